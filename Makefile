# The two commands of the README: `make demo` and `make test`. Each sets up everything it needs
# on a fresh machine: a virtualenv with the kit installed, and the Fashion-MNIST files.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA_DIR := /usr/share/datasets/fashion-mnist
DATA_FILES := train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz

.PHONY: demo test test-fast setup sandbox data browser fonts assignment clean

demo: setup data
	$(BIN)/autograder demo

# The whole suite, the slow 30-epoch training tests included (plain `pytest` skips those), and
# the 30 slowest tests, to see where the suite's minutes go. Two pytest processes (pytest-xdist), each
# test file in one of them, so that a file's shared batch is graded once: while one waits on a
# sandbox or trains on one thread, the other uses the second core.
test: setup data browser
	$(BIN)/python -m pytest -m "" -n 2 --dist loadfile --durations=30

test-fast: setup data
	$(BIN)/python -m pytest

setup: $(VENV)/.installed sandbox fonts

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[grade,test]"  # the grader and the tests too: a student needs only `pip install .`
	touch $@

# bubblewrap gives each sandbox an allow-list view of the files (autograder/sandbox/view.py): the Debian
# package where apt and root allow it; without it the grader falls back to covering a list of known
# paths (`unshare`), or to resource limits only, and says so when it grades.
sandbox:
	@if command -v bwrap >/dev/null; then \
		echo "sandbox: using $$(command -v bwrap)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "sandbox: installing the Debian package bubblewrap"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
			|| echo "sandbox: apt-get could not install bubblewrap; sandboxes will cover known paths instead"; \
	else \
		echo "sandbox: bubblewrap is not installed (no root or apt-get); sandboxes will cover known paths instead"; \
	fi

# A font with Chinese characters for the figures of the Chinese lesson's feedback pages
# (autograder/reports/plots.py, CJK_FONT_FILES): Debian's where apt and root allow it; without one
# those figures' text is English.
fonts:
	@if ls /usr/share/fonts/truetype/wqy/wqy-*.ttc /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc \
			2>/dev/null | grep -q .; then \
		echo "fonts: a font with Chinese characters is installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "fonts: installing the Debian package fonts-wqy-microhei"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) \
			|| echo "fonts: apt-get could not install fonts-wqy-microhei; Chinese pages' figures will speak English"; \
	else \
		echo "fonts: no font with Chinese characters (no root or apt-get); Chinese pages' figures will speak English"; \
	fi

# The Debian package where apt and root allow it; otherwise the loader's own search order applies
# ($$FASHION_MNIST_DIR, the Keras cache, then Keras's download), and its error says what to do.
data:
	@if [ -n "$$FASHION_MNIST_DIR" ]; then \
		echo "data: using FASHION_MNIST_DIR=$$FASHION_MNIST_DIR"; \
	elif cd $(DATA_DIR) 2>/dev/null && ls $(DATA_FILES) >/dev/null 2>&1; then \
		echo "data: using $(DATA_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "data: installing the Debian package dataset-fashion-mnist"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
			|| echo "data: apt-get could not install dataset-fashion-mnist; the loader will look elsewhere"; \
	else \
		echo "data: no root or apt-get; the loader will look in FASHION_MNIST_DIR and the Keras cache"; \
	fi

# The headless browser the page tests open the feedback page and the class overview in
# (tests/test_pages_in_a_browser.py): Selenium comes with `setup` (the `test` extra), and Debian's
# chromium with its chromedriver (Selenium's own browser download needs the internet) where apt and
# root allow it; without them those tests say so and skip.
browser: setup
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "browser: using $$(command -v chromium) and $$(command -v chromedriver)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "browser: installing the Debian packages chromium and chromium-driver"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null) \
			|| echo "browser: apt-get could not install chromium; the page tests will be skipped"; \
	else \
		echo "browser: chromium and chromedriver are not installed (no root or apt-get);" \
			"the page tests will be skipped"; \
	fi

# Regenerate the student notebook (and the self-check files beside it) from the source notebook, its
# nbgrader points first set from autograder.toml,
# then its Simplified Chinese release from the translation beside the source (scripts/localize_notebook.py).
# nbgrader's gradebook goes to build/, not the repository root.
assignment: setup
	mkdir -p build  # nbgrader's gradebook; with --force it empties the release before it opens the database
	$(BIN)/python scripts/notebook_points.py  # the points of autograder.toml into the source's nbgrader metadata
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbgrader generate_assignment fashion_mnist --force \
		--CourseDirectory.db_url=sqlite:///build/gradebook.db
	$(BIN)/python scripts/localize_notebook.py assignments/fashion_mnist assignments/fashion_mnist_zh --strict

clean:
	rm -rf $(VENV) build .pytest_cache
