# mock-genesys (the Genesys Cloud emulator) on an empty base. `cargo xtask image` assembles rootfs/
# next to this file: the release binary, exactly the shared libraries `ldd` lists plus the dynamic
# loader (at their host paths), the host's CA bundle, /etc/passwd and /etc/group with the user app
# (10001), and config/mock-genesys.toml (public test clients, queues and deployment only).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="mock-genesys" \
      org.opencontainers.image.description="Genesys Cloud emulator for development, contract tests and benchmarks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# The binary listens on loopback by default; inside a container it must take every interface.
ENV MOCK__HOST=0.0.0.0
# The emulator reads config/mock-genesys.toml relative to its working directory.
WORKDIR /
USER 10001:10001
EXPOSE 8081
# Exec form: there is no shell in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/mock-genesys", "healthcheck"]
ENTRYPOINT ["/mock-genesys"]
