# The two commands: `make dev` (the whole service locally) and `make test`.
.PHONY: dev test lint fmt package clean

dev:
	infra/local/dev.sh

test:
	infra/local/test.sh

lint:
	infra/local/lint.sh

fmt:
	cargo fmt --all

package:
	infra/local/package.sh

clean:
	rm -rf .local target
