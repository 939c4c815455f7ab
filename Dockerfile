# syntax=docker/dockerfile:1
#
# Baton's container image: the release build of .ci/start (`cargo leptos build --release`),
# then the `baton` binary and its built site on Debian slim, run as a non-root user.
#
#   docker build -t baton .
#   docker run --init --stop-timeout 30 -p 3000:3000 -v baton-data:/var/lib/baton baton
#
# The build needs BuildKit (the default builder since Docker 23) and the network (crates.io,
# rustup, npm, Debian). The first build compiles cargo-leptos (about 15 minutes, cached in its
# own layer); later builds reuse the cargo registry and target/ through cache mounts.

# The toolchain this repository builds with (cargo-leptos 0.3.11 needs rustc 1.96, so 0.3.10 it
# is; see .ci/setup). Debian trixie in both stages: its nodejs (20) is what Playwright's
# package in end2end/ asks for, and the binary links against the same glibc it runs with.
ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

# ---- the wasm-bindgen version Cargo.lock pins --------------------------------------------------
# A stage of its own, so the (3-minute) wasm-bindgen-cli install below is only redone when the
# version changes, not with every change of Cargo.lock.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS wasm-bindgen-version
COPY Cargo.lock /tmp/Cargo.lock
# The same extraction as .ci/setup.
RUN awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' \
        /tmp/Cargo.lock > /wasm-bindgen-version \
 && test -s /wasm-bindgen-version

# ---- build tools (what .ci/setup installs) -----------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS tools
# Node and npm, for the npm packages of end2end/ (binaryen's wasm-opt).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown
ARG CARGO_LEPTOS_VERSION=0.3.10
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo install cargo-leptos --locked --version "${CARGO_LEPTOS_VERSION}"
COPY --from=wasm-bindgen-version /wasm-bindgen-version /tmp/wasm-bindgen-version
# Not --locked: its lockfile names a crate version the registry no longer serves (.ci/setup).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo install wasm-bindgen-cli --version "$(cat /tmp/wasm-bindgen-version)"

# ---- the release build -------------------------------------------------------------------------
FROM tools AS build
WORKDIR /src
# Playwright (not used here; it downloads no browser) and binaryen 132, whose wasm-opt
# cargo-leptos runs for release builds. Debian's binaryen makes a WASM that fails to hydrate.
COPY end2end/package.json end2end/package-lock.json end2end/
RUN cd end2end && npm ci --no-audit --no-fund
# cargo-leptos takes wasm-bindgen and wasm-opt from PATH and downloads one only when it is
# missing; with both here it never does (the style is plain CSS: no sass, no tailwind).
ENV PATH=/src/end2end/node_modules/.bin:$PATH
RUN wasm-opt --version \
 && wasm-bindgen --version | grep -qF "$(cat /tmp/wasm-bindgen-version)"
COPY . .
# target/ is a cache mount, so what the next stage needs is copied out of it in the same step.
# .cargo/config.toml sets LEPTOS_OUTPUT_NAME=baton for the build, as cargo-leptos does.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target,id=baton-target,sharing=locked \
    rm -rf target/site \
 && cargo leptos build --release \
 && install -D -m 0755 target/release/baton /out/baton \
 && cp -r target/site /out/site

# ---- runtime -----------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# The server's own time zone (cron schedules without a `tz`, such as the built-in full sync at
# 12:00) is `TZ` when it names an IANA zone (`docker run -e TZ=Europe/Rome`), else UTC here.
# Baton carries its own zone database, so tzdata is not needed.
# ca-certificates: the roots rustls trusts for Postgres over TLS and HTTPS connectors.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 baton \
 && useradd --system --uid 10001 --gid baton --home-dir /var/lib/baton --no-create-home \
        --shell /usr/sbin/nologin baton \
 && install -d -o baton -g baton -m 0750 /var/lib/baton
COPY --from=build /out/baton /usr/local/bin/baton
COPY --from=build /out/site /usr/local/share/baton/site

# Every setting is also BATON_<KEY> (see README, Configuration). These are the ones a container
# needs different from the defaults:
#   BATON_ADDR        listen on every interface, not 127.0.0.1 (default 127.0.0.1:3000)
#   BATON_DATA_DIR    the SQLite file is <data_dir>/baton.db, in the volume (default ./data)
#   BATON_LOG_FORMAT  one JSON object per line for log collectors (default text)
#   LEPTOS_SITE_ROOT  where the built site is (Leptos' default: target/site, relative)
# Set at `docker run` when needed: BATON_DATABASE_URL (postgres://… for Postgres instead of
# SQLite); BATON_PUBLIC_URL (the address people open, e.g. https://baton.example.com behind a
# proxy: Baton answers 421 to a Host that is not its public_url's, an allowed_hosts entry, or
# localhost / 127.0.0.1 / [::1] with the port it listens on); BATON_CONFIG (a mounted baton.toml,
# for [connections], sync types, workflows, hooks).
# LEPTOS_ENV is left unset: Baton then runs Leptos in production mode.
ENV BATON_ADDR=0.0.0.0:3000 \
    BATON_DATA_DIR=/var/lib/baton \
    BATON_LOG_FORMAT=json \
    LEPTOS_SITE_ROOT=/usr/local/share/baton/site

# Relative paths in baton.toml (an export's `dir`, say) resolve here, in the volume.
WORKDIR /var/lib/baton
VOLUME ["/var/lib/baton"]
USER baton:baton
EXPOSE 3000

# No HEALTHCHECK: the image has no HTTP client. Probe from outside instead:
#   GET /healthz  200 while the process serves (never touches the database)
#   GET /readyz   200 when the database answers; 503 when it does not or the process is stopping
# Both answer whatever the Host header says.

# Baton drains on SIGTERM: it stops accepting, ends event streams, gives requests and running
# jobs shutdown_timeout (10s) to finish, marks itself stopped. Docker's own stop timeout is
# also 10s, so give it more: `docker run --stop-timeout 30`, or stop_grace_period in compose.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/baton"]
CMD ["serve"]
