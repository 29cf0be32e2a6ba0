# Plain `make`, `make test`, `make demo` work too.
include apxs.mk
