// Placeholder: filled in by the HTTP/2 work (issue 14).
