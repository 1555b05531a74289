# paytx container image: paytx-coordinator, paytx-ledger, paytx-risk, paytx-cache
# and paytxctl.
#
#   docker build -t paytx .
#   docker run --rm paytx paytx-coordinator --help
#
# Only Debian 12 packages are used; nothing else is fetched.

# ---------------------------------------------------------------------------
# build stage
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential meson ninja-build pkg-config \
        librabbitmq-dev libjson-c-dev libpq-dev libssl-dev libmicrohttpd-dev libhiredis-dev check python3 \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# Only what the build reads: never a host build/ directory or .paytx/ state.
COPY meson.build meson_options.txt ./
COPY include/ include/
COPY src/ src/
COPY sql/ sql/
COPY scripts/embed_sql.py scripts/

# -Dwerror=false: at -O3 (release) GCC 12 reports -Wmaybe-uninitialized
# false positives that the default -O2 build does not; they must not break
# the image build. Warnings are still printed.
RUN meson setup build -Dtests=false --buildtype=release -Dwerror=false \
 && ninja -C build \
 && meson install -C build --destdir /out --strip

# ---------------------------------------------------------------------------
# runtime stage
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        librabbitmq4 libjson-c5 libpq5 libssl3 libmicrohttpd12 libhiredis0.14 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 paytx \
 && useradd --system --uid 10001 --gid paytx --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin paytx

# meson's default prefix is /usr/local: binaries in /usr/local/bin (on PATH).
# The schema is compiled into the binaries; /usr/local/share/paytx/sql is not
# needed at run time and is left out.
COPY --from=build /out/usr/local/bin/paytx-coordinator \
                  /out/usr/local/bin/paytx-ledger \
                  /out/usr/local/bin/paytx-risk \
                  /out/usr/local/bin/paytx-cache \
                  /out/usr/local/bin/paytxctl \
                  /usr/local/bin/

# The user paytx (uid 10001), numeric so that "run as non-root" checks
# (e.g. Kubernetes runAsNonRoot) can verify it.
USER 10001:10001

# No default service: say which one, e.g. `paytx-coordinator` or
# `paytxctl migrate`. All settings come from PAYTX_* environment variables
# (see `--help` of each program).
CMD ["paytxctl", "--help"]
