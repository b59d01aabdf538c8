# The two commands: `make dev` (the whole service locally) and `make test`.
.PHONY: dev test lint fmt package clean

dev:
	infra/local/dev.sh

test:
	infra/local/test.sh

lint:
	infra/local/lint.sh
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

clean:
	rm -rf .local target
