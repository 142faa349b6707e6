#pragma once
// Private to server: the validating admission webhook listener (ingress.webhook): TLS, HTTP/1.1,
// POST /validate with an AdmissionReview v1; the Ingress is compiled against the current
// resources with the same step as run and validate, and refused with the same messages.
// Control thread.
