# The two commands: `make dev` (the whole service locally) and `make test`.
.PHONY: dev test bench bench-scale fuzz smoke lint fmt package tools clean

dev:
	infra/local/dev.sh

test:
	infra/local/test.sh

# Not part of test: regenerates BENCHMARKS.md (see infra/local/bench.sh).
bench:
	infra/local/bench.sh

# Not part of test: the Scale section of BENCHMARKS.md (see infra/local/bench-scale.sh).
bench-scale:
	infra/local/bench-scale.sh

# Not part of test: schemathesis against every family (see infra/local/fuzz.sh).
fuzz:
	infra/local/fuzz.sh

# infra/smoke.sh (every family once) against make dev; CI runs it.
smoke:
	infra/local/smoke-dev.sh

lint:
	infra/local/lint.sh

fmt:
	cargo fmt --all

# Not part of test: `sam build` (release builds of every function) and the sizes.
package:
	infra/local/package.sh

# sam (SAM CLI) and cargo-lambda into .tools; put .tools/bin on PATH to deploy.
tools:
	@bash -c 'source infra/local/common.sh && ensure_deploy_tools && echo "export PATH=\"$$PWD/.tools/bin:\$$PATH\""'

clean:
	rm -rf .local target .aws-sam
