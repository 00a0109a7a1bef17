# MedGemma-X: build the server and web app, then a runtime image with just the binary, the site and the
# libtorch shared libraries (CPU and CUDA) from the torch 2.11.0 wheel.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3-venv pkg-config cmake nasm nodejs npm \
 && rm -rf /var/lib/apt/lists/*
# torch at a fixed path: the binary's rpath points into it, and the runtime stage copies the same path.
RUN python3 -m venv /opt/torch && /opt/torch/bin/pip install --no-cache-dir torch==2.11.0
ENV PATH=/opt/torch/bin:$PATH LIBTORCH_USE_PYTORCH=1
WORKDIR /src
COPY rust-toolchain.toml ./
RUN rustup show active-toolchain || rustup toolchain install
RUN cargo install cargo-leptos --version 0.3.11 --locked
COPY Cargo.toml Cargo.lock ./
RUN cargo install wasm-bindgen-cli --version "$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
# wasm-opt from npm: Debian's binaryen is too old for wasm-bindgen's output.
COPY build-support/package.json build-support/package-lock.json build-support/
RUN cd build-support && npm ci --no-audit --no-fund
ENV PATH=/src/build-support/node_modules/.bin:$PATH
COPY . .
RUN cargo leptos build --release

FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libgomp1 \
      fonts-wqy-microhei \
 && rm -rf /var/lib/apt/lists/*
# libtorch and the CUDA libraries it loads (nvidia/*), at the paths baked into the binary's rpath.
COPY --from=build /opt/torch/lib/python3.11/site-packages/torch/lib /opt/torch/lib/python3.11/site-packages/torch/lib
COPY --from=build /opt/torch/lib/python3.11/site-packages/nvidia /opt/torch/lib/python3.11/site-packages/nvidia
COPY --from=build /src/target/release/medgemma-x /opt/medgemma-x/bin/medgemma-x
COPY --from=build /src/target/site /opt/medgemma-x/site
ENV MEDGEMMA_X_DATA_DIR=/var/lib/medgemma-x \
    MEDGEMMA_X_BIND=0.0.0.0:7860
VOLUME /var/lib/medgemma-x
EXPOSE 7860
STOPSIGNAL SIGTERM
# `status` exits 0 when the server of the data dir runs and answers /readyz, 2 when it runs but is unhealthy.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["/opt/medgemma-x/bin/medgemma-x", "status"]
ENTRYPOINT ["/opt/medgemma-x/bin/medgemma-x"]
CMD ["serve"]
