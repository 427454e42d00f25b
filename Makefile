# SPDX-License-Identifier: GPL-2.0-or-later
# Build and install ldirector.
#
#   make                  cargo build --release
#   sudo make install     install what `make` built (never builds as root)
#   make install DESTDIR=/tmp/stage TARGET_DIR=target/debug   (staging)
#
# Installs: ldirectord and ipvs-ls in $(SBINDIR), the OCF agent as
# ocf:ldirector:ldirectord in $(OCFDIR), the man pages (generated from the
# command-line definitions) in $(MANDIR)/man8, the example configs in
# $(EXAMPLESDIR), and the systemd units in $(UNITDIR) (not enabled).

PREFIX      ?= /usr
SBINDIR     ?= $(PREFIX)/sbin
MANDIR      ?= $(PREFIX)/share/man
DOCDIR      ?= $(PREFIX)/share/doc/ldirector
EXAMPLESDIR ?= $(DOCDIR)/examples
# Pacemaker 2.1 looks for OCF agents only under /usr/lib/ocf.
OCFDIR      ?= /usr/lib/ocf/resource.d/ldirector
UNITDIR     ?= /lib/systemd/system
TARGET_DIR  ?= target/release
CARGO       ?= cargo
INSTALL     ?= install

BINARIES = ldirectord ipvs-ls

.PHONY: all install uninstall

all:
	$(CARGO) build --release --bins

install:
	@for b in $(BINARIES); do \
		test -x "$(TARGET_DIR)/$$b" || { echo "$(TARGET_DIR)/$$b missing: run 'make' first" >&2; exit 1; }; \
	done
	$(INSTALL) -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(OCFDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(EXAMPLESDIR) $(DESTDIR)$(UNITDIR)
	$(INSTALL) -m 755 $(addprefix $(TARGET_DIR)/,$(BINARIES)) $(DESTDIR)$(SBINDIR)/
	$(INSTALL) -m 755 ocf/ldirectord $(DESTDIR)$(OCFDIR)/ldirectord
	$(TARGET_DIR)/ldirectord --generate-man $(DESTDIR)$(MANDIR)/man8
	$(TARGET_DIR)/ipvs-ls --generate-man $(DESTDIR)$(MANDIR)/man8
	$(INSTALL) -m 644 conf/*.cf $(DESTDIR)$(EXAMPLESDIR)/
	$(INSTALL) -m 644 packaging/systemd/ldirectord.service \
		packaging/systemd/ldirectord@.service $(DESTDIR)$(UNITDIR)/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(SBINDIR)/,$(BINARIES)) $(DESTDIR)$(OCFDIR)/ldirectord \
		$(DESTDIR)$(MANDIR)/man8/ldirectord.8 $(DESTDIR)$(MANDIR)/man8/ipvs-ls.8 \
		$(DESTDIR)$(UNITDIR)/ldirectord.service $(DESTDIR)$(UNITDIR)/ldirectord@.service
	rm -rf $(DESTDIR)$(EXAMPLESDIR)
	-rmdir $(DESTDIR)$(OCFDIR) $(DESTDIR)$(DOCDIR) 2>/dev/null
