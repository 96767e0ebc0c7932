# make run: the whole system on this machine.  make test: the test suite, real servers included.
PYTHON ?= python3
VENV := .venv
export DEBUG ?= 1
export HTTP_PORT ?= 8000
export WS_PORT ?= 8001

.PHONY: run test clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python scripts/dev.py

test: $(VENV)/.installed
	$(VENV)/bin/python manage.py test tests --noinput

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 staticfiles
