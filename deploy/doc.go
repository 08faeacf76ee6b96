// Package deploy holds the production deployment of labourlink: systemd units (systemd/), an
// example two-pair federation's settings (example/), Kubernetes manifests (kubernetes/) and a
// container build (Containerfile). It has no code; its test checks the files offline: that they
// parse, carry the required settings, and name only flags the services have.
package deploy
