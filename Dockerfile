# syntax=docker/dockerfile:1
# The portcullis image: `podman build -t localhost/portcullis:0.1.0 .` (or docker build). It
# serves deploy/container/demo.yaml by default (the demo on 0.0.0.0:8080, admin on the
# container's loopback); mount a configuration over /etc/portcullis/portcullis.yaml for real use.
# deploy/kubernetes/deployment.yaml runs this image by that name.

# Build: the release binary, without debug symbols.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin portcullis \
 && objcopy --strip-debug target/release/portcullis /portcullis

# Run: glibc, libgcc, CA certificates and time zones, no shell; a non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /portcullis /usr/local/bin/portcullis
COPY deploy/container/demo.yaml /etc/portcullis/portcullis.yaml
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/portcullis", "probe", "http://127.0.0.1:9901/readyz"]
ENTRYPOINT ["/usr/local/bin/portcullis"]
CMD ["run", "--config", "/etc/portcullis/portcullis.yaml"]
