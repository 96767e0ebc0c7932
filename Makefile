# make run: the whole system on this machine.  make test: the test suite, real servers included
# (the browser client's npm package under node first, clients/js).
# make bench [QUICK=1]: the benchmark beside Django Channels (docs/performance.md); not part of test.
# DJANGO=6.1: any of them on Django 6.1 instead of 5.2 LTS, in .venv-django6.1 (CI tests both).
DJANGO ?= 5.2
ifeq ($(DJANGO),5.2)
PYTHON ?= python3
VENV := .venv
REQUIREMENTS := requirements.txt
else
# Django 6 needs Python 3.12 or later: the newest on this machine (scripts/python312.sh).
PYTHON ?= $(shell scripts/python312.sh)
VENV := .venv-django$(DJANGO)
REQUIREMENTS := requirements-django$(DJANGO).txt
endif
CHANNELS_VENV := bench/.venv-channels
export DEBUG ?= 1
export HTTP_PORT ?= 8000
export WS_PORT ?= 8001

.PHONY: run test bench clean

$(VENV)/.installed: $(REQUIREMENTS) requirements-common.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS) -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python scripts/dev.py

test: $(VENV)/.installed
	cd clients/js && PYTHON=$(abspath $(VENV))/bin/python npm test
	$(VENV)/bin/python manage.py test tests --noinput

$(VENV)/.bench-installed: $(VENV)/.installed bench/requirements.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

$(CHANNELS_VENV)/.installed: bench/requirements-channels.txt
	$(PYTHON) -m venv $(CHANNELS_VENV)
	$(CHANNELS_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-channels.txt
	touch $@

bench: $(VENV)/.bench-installed $(CHANNELS_VENV)/.installed
	$(VENV)/bin/python -m bench.run $(if $(QUICK),--quick)

clean:
	rm -rf .venv .venv-django* $(CHANNELS_VENV) db.sqlite3 test-db.sqlite3 staticfiles
