# The README's two commands are `make demo` (the whole stack on loopback, narrated) and `make test`
# (every test). Both install what they need into .venv first (scripts/bootstrap.sh).

.PHONY: bootstrap demo test bench bench-reconcile

bootstrap:
	bash scripts/bootstrap.sh

demo:
	bash scripts/bootstrap.sh && .venv/bin/python scripts/local/demo.py $(DEMO_ARGS)

test:
	bash scripts/test.sh

bench:
	bash scripts/bench.sh

# The reconciler over the ECS maximum of 5,000 hosts on moto (slow: ~registering 5,000 hosts).
bench-reconcile:
	bash scripts/bench_reconcile.sh
