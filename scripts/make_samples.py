"""Regenerate the sample PDFs in data/ (fictional companies, English and Korean): python scripts/make_samples.py"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.pdfs import write_pdf  # noqa: E402

AURORA = [
    "Aurora Tidal Power - Annual Report 2024\n\n"
    "Company overview\n"
    "Aurora Tidal Power Ltd. is a renewable energy company headquartered in Port Calder, Scotland. "
    "It was founded in 2011 by the marine engineer Dr. Elena Marsh, who remains chief executive. "
    "The company designs, builds and operates tidal stream turbines and sells the electricity under "
    "long-term contracts to the national grid.\n\n"
    "This report covers the financial year from 1 January to 31 December 2024.",

    "Operations\n\n"
    "The flagship Kelvar Strait array has 48 turbines with a combined capacity of 96 megawatts. "
    "It was commissioned in March 2019 after four years of construction.\n\n"
    "In 2024 the array generated 312 gigawatt-hours of electricity, enough for about 95,000 homes. "
    "Turbine availability averaged 94.2 percent, up from 91.7 percent in 2023, thanks to the new "
    "predictive maintenance programme based on vibration sensors.",

    "Financial results\n\n"
    "Revenue for 2024 was 184.6 million pounds, an increase of 12 percent from 164.8 million pounds in 2023. "
    "Operating profit rose to 41.3 million pounds. Net debt at year end stood at 220 million pounds, "
    "mostly long-term green bonds maturing in 2034.\n\n"
    "The board proposes a dividend of 6.5 pence per share.",

    "Outlook and people\n\n"
    "In 2025 the company will start building its second array, Morrow Sound, with 60 turbines. "
    "First power from Morrow Sound is expected in 2027.\n\n"
    "Aurora employed 1,240 people at the end of 2024. The lost-time injury rate was 0.18 per 200,000 "
    "hours worked, the lowest in the company's history.",
]

HANBIT = [
    "한빛스마트팜 2024 연례 보고서\n\n"
    "회사 개요\n"
    "한빛스마트팜은 2016년 전라남도 나주에 설립된 스마트팜 기업이다. 대표이사는 김도윤이다. "
    "회사는 인공지능 기반 환경 제어 시스템으로 딸기와 토마토를 재배한다.",

    "생산 현황\n\n"
    "2024년 딸기 생산량은 1,850톤으로 전년 대비 18% 증가했다. "
    "회사는 수직농장 3곳을 운영하며 총 재배 면적은 42,000제곱미터이다. "
    "에너지 사용량은 태양광 발전 도입으로 전년보다 11% 줄었다.",

    "재무 성과 및 계획\n\n"
    "2024년 매출액은 312억 원, 영업이익은 27억 원을 기록했다. "
    "2025년에는 일본 수출을 시작할 예정이며 목표 수출액은 50억 원이다. "
    "2024년 말 기준 직원 수는 214명이다.",
]


def main() -> None:
    data = ROOT / "data"
    write_pdf(data / "aurora-tidal-power-2024.pdf", AURORA, title="Aurora Tidal Power - Annual Report 2024")
    write_pdf(data / "hanbit-smartfarm-2024-ko.pdf", HANBIT, title="한빛스마트팜 2024 연례 보고서")
    print(f"wrote sample PDFs to {data}")


if __name__ == "__main__":
    main()
