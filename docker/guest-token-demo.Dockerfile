# guest-token-demo (the demo page and demo-server, its static file server) on an empty base.
# `cargo xtask image` assembles rootfs/ next to this file: the release binary, exactly the shared
# libraries `ldd` lists plus the dynamic loader (at their host paths), the host's CA bundle,
# /etc/passwd and /etc/group with the user app (10001), and the site (demo/site) at /site. The
# page's settings (API and Genesys base URLs, queue, deployment) come from DEMO_* variables.
FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="guest-token-demo" \
      org.opencontainers.image.description="Demo page that plays the embedded chat widget, served from its own origin" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"
COPY rootfs/ /
# The container's own interface; compose publishes the port on the host's loopback only.
ENV DEMO_HOST=0.0.0.0 \
    DEMO_SITE_DIR=/site
WORKDIR /
USER 10001:10001
EXPOSE 8080
# Exec form: there is no shell in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["/demo-server", "healthcheck"]
ENTRYPOINT ["/demo-server"]
