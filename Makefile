# SPDX-License-Identifier: Apache-2.0
# Plain `make`, `make test`, `make demo` work too.
include apxs.mk
