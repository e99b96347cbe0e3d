# Every target sets up what it needs itself: the virtual environment, and for the tests the
# Debian packages they drive for real (OpenSSH test hosts, shellcheck, cloud-init, debootstrap,
# Chromium for the report page).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := openssh-server openssh-client iproute2 shellcheck cloud-init genisoimage debootstrap procps sudo xsltproc qemu-system-x86 qemu-utils chromium
# command each package provides, to see whether it is already there
APT_PROBES := /usr/sbin/sshd /usr/bin/ssh-keygen /usr/sbin/ip /usr/bin/shellcheck /usr/bin/cloud-init /usr/bin/genisoimage /usr/sbin/debootstrap /usr/bin/pkill /usr/bin/sudo /usr/bin/xsltproc /usr/bin/qemu-system-x86_64 /usr/bin/qemu-img /usr/bin/chromium

.PHONY: demo test bench lint sysdeps venv clean study

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fedstack needs Python 3.11 or newer, found " + sys.version.split()[0])'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && $(PYTHON) -c 'import ensurepip' 2>/dev/null || $(MAKE) --no-print-directory APT_PACKAGES=python3-venv APT_PROBES=/nonexistent sysdeps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

sysdeps:
	@missing=0; for p in $(APT_PROBES); do [ -x "$$p" ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "make: the tests need these Debian packages, install them as root: $(APT_PACKAGES)" >&2; exit 1; fi; \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES) >/dev/null; \
	fi

demo: venv
	$(BIN)/python -m runner --demo

test: venv sysdeps
	$(BIN)/python -m pytest

# the federated-against-centralized study (analysis/Snakefile): writes analysis/results/
study: venv
	cd analysis && ../$(BIN)/snakemake --cores 2 --resources federation=1

bench: venv
	$(BIN)/python -m bench

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/flake8 .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
