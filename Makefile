# The two commands: `make dev` (the whole service locally) and `make test`.
.PHONY: dev test bench fuzz lint fmt package clean

dev:
	infra/local/dev.sh

test:
	infra/local/test.sh

# Not part of test: regenerates BENCHMARKS.md (see infra/local/bench.sh).
bench:
	infra/local/bench.sh

# Not part of test: schemathesis against every family (see infra/local/fuzz.sh).
fuzz:
	infra/local/fuzz.sh

lint:
	infra/local/lint.sh

fmt:
	cargo fmt --all

package:
	infra/local/package.sh

clean:
	rm -rf .local target
