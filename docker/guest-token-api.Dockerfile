# guest-token-api on an empty base. `cargo xtask image` assembles rootfs/ next to this file: the
# release binary, exactly the shared libraries `ldd` lists plus the dynamic loader (at their host
# paths), the host's CA bundle, /etc/passwd and /etc/group with the user app (10001), and config/
# (defaults and environment files; no secrets: credentials come from the environment at run time).
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="guest-token-api" \
      org.opencontainers.image.description="Issues Genesys Cloud web chat guest tokens to browser widgets" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY rootfs/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    APP_CONFIG_DIR=/config \
    APP_ENV=production
WORKDIR /
USER 10001:10001
EXPOSE 3000
# Exec form: there is no shell in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/guest-token-api", "healthcheck"]
ENTRYPOINT ["/guest-token-api"]
