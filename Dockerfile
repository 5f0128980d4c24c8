# syntax=docker/dockerfile:1
# Build a static embedtoken binary, then ship it alone in a minimal image
# that runs as a non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/embedtoken/embedtoken/cmd.Version=${VERSION}" \
      -o /out/embedtoken ./cmd/embedtoken

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/embedtoken /usr/local/bin/embedtoken
COPY --from=build /src/hcl /etc/embedtoken
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/embedtoken"]
# The default only checks the shipped example; a sidecar runs with its own block:
#   sidecar --config /etc/embedtoken --config /etc/embedtoken/sidecars/<api>.hcl
CMD ["check", "--config", "/etc/embedtoken"]
