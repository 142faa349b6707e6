#pragma once
// Private to server: the validating admission webhook listener (`ingress.webhook`): its own TLS
// listener (certificate and key from the config, TLS 1.2+ with the server's cipher policy),
// HTTP/1.1 parsed by llhttp, one route: POST /validate with an AdmissionReview v1 body (at most
// 3 MiB, as the API server sends). The Ingress in the review is compiled against the current
// resources by compile::review_ingress (the same step as run and validate) and refused with the
// same messages. Anything else: 404/405/400/413. Control thread (the review needs the store).
#include <functional>
#include <memory>
#include <string>

#include "phigate/compile/review.hpp"
#include "phigate/config/spec.hpp"
#include "phigate/ingress/loader.hpp"
#include "phigate/net/asio.hpp"

namespace phigate::server::detail {

struct WebhookStats {
  std::uint64_t reviews = 0, allowed = 0, denied = 0, bad_requests = 0;
};

class Webhook {
 public:
  struct Hooks {
    /// The configuration now serving (for class selection and compile settings).
    std::function<std::shared_ptr<const config::Config>()> config;
    /// The resources now known (the Kubernetes store or the Ingress folder).
    std::function<ingress::LoadResult()> resources;
  };
  /// Binds `spec.listen` and loads the certificate; nullptr with `error` set on failure.
  static std::unique_ptr<Webhook> create(net::asio::io_context& io, const config::WebhookSpec& spec, Hooks hooks,
                                         std::string& error);
  virtual ~Webhook() = default;
  virtual void start() = 0;
  virtual void stop() = 0;
  /// "127.0.0.1:8444" as bound (port 0 resolved).
  virtual std::string local_address() const = 0;
  virtual WebhookStats stats() const = 0;
};

}  // namespace phigate::server::detail
