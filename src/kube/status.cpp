#include "phigate/kube/status.hpp"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "phigate/core/log.hpp"
#include "phigate/kube/leader.hpp"
#include "status_impl.hpp"

namespace phigate::kube {

namespace {

constexpr std::size_t kMaxEventMessage = 1024;  // message is truncated to 1 KiB (Events are not logs)
constexpr std::size_t kMaxObjectName = 253;     // DNS subdomain (metadata.name of the Event)

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

/// An IPv4 or IPv6 literal goes into `ip`, anything else into `hostname`
/// (networking.k8s.io/v1 IngressLoadBalancerIngress).
bool is_ip(const std::string& s) {
  net::error_code ec;
  (void)net::asio::ip::make_address(s, ec);
  return !ec;
}

std::vector<std::string> split_addresses(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    const auto comma = list.find(',', start);
    const auto end = comma == std::string::npos ? list.size() : comma;
    if (auto a = trim(std::string_view(list).substr(start, end - start)); !a.empty())
      out.push_back(std::move(a));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// status.loadBalancer.ingress of a Service (each ip, else hostname); nullopt when the body is not
/// a Service.
std::optional<std::vector<std::string>> service_addresses(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS || !doc.is_object()) return std::nullopt;
  std::vector<std::string> out;
  simdjson::dom::array items;
  if (doc["status"]["loadBalancer"]["ingress"].get_array().get(items) != simdjson::SUCCESS) return out;
  for (auto item : items) {
    std::string_view v;
    if (item["ip"].get_string().get(v) == simdjson::SUCCESS && !v.empty()) {
      out.emplace_back(v);
    } else if (item["hostname"].get_string().get(v) == simdjson::SUCCESS && !v.empty()) {
      out.emplace_back(v);
    }
  }
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string load_balancer_json(const std::vector<std::string>& addrs) {
  // An empty list clears the field: JSON merge patch (RFC 7386) deletes a member set to null.
  if (addrs.empty()) return "{\"status\":{\"loadBalancer\":{\"ingress\":null}}}";
  std::string b = "{\"status\":{\"loadBalancer\":{\"ingress\":[";
  for (std::size_t i = 0; i < addrs.size(); ++i) {
    if (i) b += ',';
    b += is_ip(addrs[i]) ? "{\"ip\":" : "{\"hostname\":";
    b += detail::json_quote(addrs[i]) + "}";
  }
  b += "]}}}";
  return b;
}

}  // namespace

struct StatusWriter::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::asio::io_context& io, Client& c, const config::KubernetesSpec& s, std::function<bool()> l)
      : client(c), spec(s), leading(std::move(l)), timer(io) {
    identity = spec.identity.empty() ? default_identity(process_env()) : spec.identity;
    if (spec.publish_service.empty()) {
      addresses = split_addresses(spec.publish_address);
      addresses_known = true;
    } else {
      const auto slash = spec.publish_service.find('/');
      service_ns = spec.publish_service.substr(0, slash);
      service_name = slash == std::string::npos ? std::string() : spec.publish_service.substr(slash + 1);
    }
  }

  Client& client;
  config::KubernetesSpec spec;
  std::function<bool()> leading;
  net::asio::steady_timer timer;
  std::string identity;
  std::string service_ns, service_name;

  std::vector<std::string> addresses;
  bool addresses_known = false;  // publish_service: false until the Service was read once

  /// "ns/name" → the Ingress as last served.
  std::map<std::string, ServedIngress> served;
  /// Ingresses whose status we wrote: what we wrote, and their `current` when we wrote it (until
  /// the snapshot shows our write, `current` is stale: do not write the same again).
  struct Written {
    std::vector<std::string> wrote, current_then;
  };
  std::map<std::string, Written> written;
  /// Last Event message posted per Ingress.
  std::map<std::string, std::string> evented;
  /// Keys that failed in this round: not retried until the next update() or tick (no tight loop).
  std::set<std::string> failed_status, failed_event;

  bool running = false;
  bool in_flight = false;
  bool service_in_flight = false;
  std::uint64_t generation = 0;
  StatusStats stats;
  std::string logged_failure;

  bool may_write() const { return !leading || leading(); }

  void schedule() {
    if (!running) return;
    timer.expires_after(spec.retry_period);
    timer.async_wait([weak = weak_from_this(), gen = generation](const net::error_code& ec) {
      auto self = weak.lock();
      if (ec || !self || self->generation != gen) return;
      self->tick();
    });
  }

  void tick() {
    failed_status.clear();
    failed_event.clear();
    if (!service_name.empty()) poll_service();
    pump();
    schedule();
  }

  void note_failure(const std::string& what) {
    if (what != logged_failure) {
      PHI_LOG_WARN("ingress status: {}", what);
      logged_failure = what;
    }
  }

  // publish_service: GET the one Service every retry period (a watch would be one more stream per
  // process for an object that changes rarely; a retry period of lag is fine for status).
  void poll_service() {
    if (service_in_flight) return;
    service_in_flight = true;
    RequestOptions req;
    req.path = "/api/v1/namespaces/" + url_escape(service_ns) + "/services/" + url_escape(service_name);
    req.timeout = spec.request_timeout;
    client.request(std::move(req), [weak = weak_from_this(), gen = generation](
                                       std::optional<Response> r, std::optional<TransportError> e) {
      auto self = weak.lock();
      if (!self || self->generation != gen) return;
      self->service_in_flight = false;
      if (e || !r)
        return self->note_failure("Service " + self->spec.publish_service + ": " +
                                  (e ? e->message : std::string("no answer")));
      std::optional<std::vector<std::string>> addrs;
      if (r->status == 404) {
        addrs.emplace();  // no Service: no address to publish
      } else if (r->status == 200) {
        addrs = service_addresses(r->body);
      }
      if (!addrs)
        return self->note_failure("Service " + self->spec.publish_service + ": answered " +
                                  std::to_string(r->status));
      if (!self->addresses_known || *addrs != self->addresses) {
        PHI_LOG_INFO("ingress status: Service {} publishes {} address(es)", self->spec.publish_service,
                     addrs->size());
        self->addresses = std::move(*addrs);
        self->addresses_known = true;
        self->failed_status.clear();
        self->pump();
      }
    });
  }

  // The next write to make, if any: status first (what clients read), then Events.
  void pump() {
    if (!running || in_flight || !may_write()) return;
    if (spec.status && addresses_known) {
      const auto desired = sorted(addresses);
      for (const auto& [key, ing] : served) {
        if (failed_status.count(key)) continue;
        const auto current = sorted(ing.current);
        if (current == desired) continue;
        // No address to publish (the Service has no load balancer yet): leave status alone, except
        // what we wrote ourselves, which is no longer true.
        if (desired.empty() && !written.count(key)) continue;
        if (auto w = written.find(key);
            w != written.end() && w->second.wrote == desired && w->second.current_then == current)
          continue;  // our write is not in the snapshot yet
        return patch(ing.ns, ing.name, key, addresses, current);
      }
      for (const auto& [key, w] : written) {
        if (served.count(key) || failed_status.count(key)) continue;
        const auto slash = key.find('/');
        return patch(key.substr(0, slash), key.substr(slash + 1), key, {}, {});
      }
    }
    if (spec.events) {
      for (const auto& [key, ing] : served) {
        if (ing.failed_closed.empty() || failed_event.count(key)) continue;
        auto message = event_message(ing.failed_closed);
        if (auto e = evented.find(key); e != evented.end() && e->second == message) continue;
        return post_event(ing, key, std::move(message));
      }
    }
  }

  static std::string event_message(const std::vector<std::string>& lines) {
    std::string m;
    for (const auto& l : lines) {
      if (!m.empty()) m += "; ";
      m += l;
    }
    return detail::truncate_utf8(std::move(m), kMaxEventMessage);
  }

  void patch(const std::string& ns, const std::string& name, const std::string& key,
             std::vector<std::string> addrs, std::vector<std::string> current_then) {
    in_flight = true;
    RequestOptions req;
    req.method = "PATCH";
    req.path = "/apis/networking.k8s.io/v1/namespaces/" + url_escape(ns) + "/ingresses/" + url_escape(name) +
               "/status";
    req.body = load_balancer_json(addrs);
    req.content_type = "application/merge-patch+json";
    req.timeout = spec.request_timeout;
    client.request(std::move(req), [weak = weak_from_this(), gen = generation, key, addrs = sorted(addrs),
                                    current_then = std::move(current_then)](std::optional<Response> r,
                                                                            std::optional<TransportError> e) {
      auto self = weak.lock();
      if (!self || self->generation != gen) return;
      self->in_flight = false;
      const bool clear = addrs.empty() && !self->served.count(key);
      if (r && r->status == 200) {
        ++self->stats.status_updates;
        self->logged_failure.clear();
        if (clear) {
          self->written.erase(key);
        } else {
          self->written[key] = Written{addrs, current_then};
        }
      } else if (r && r->status == 404 && clear) {
        self->written.erase(key);  // the Ingress is gone: nothing left to clear
      } else {
        ++self->stats.status_failures;
        self->failed_status.insert(key);
        self->note_failure("updating Ingress " + key +
                           " status: " + (e ? e->message : "answered " + std::to_string(r ? r->status : 0)));
      }
      self->pump();
    });
  }

  void post_event(const ServedIngress& ing, const std::string& key, std::string message) {
    in_flight = true;
    const auto now = std::chrono::system_clock::now();
    const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(nanos));
    // client-go names Events "<object>.<unix nanos in hex>"; cut the object name to stay a valid name.
    auto event_name = ing.name.substr(0, kMaxObjectName - std::char_traits<char>::length(suffix)) + suffix;
    const auto ts = detail::format_time(now, /*micro=*/false);
    std::string b =
        "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"name\":" + detail::json_quote(event_name);
    b += ",\"namespace\":" + detail::json_quote(ing.ns) + "}";
    b += ",\"involvedObject\":{\"kind\":\"Ingress\",\"apiVersion\":\"networking.k8s.io/v1\",\"namespace\":" +
         detail::json_quote(ing.ns) + ",\"name\":" + detail::json_quote(ing.name) + "}";
    b += ",\"reason\":\"FailedClosed\",\"type\":\"Warning\",\"message\":" + detail::json_quote(message);
    b += ",\"source\":{\"component\":\"phigate\"},\"firstTimestamp\":" + detail::json_quote(ts) +
         ",\"lastTimestamp\":" + detail::json_quote(ts) + ",\"count\":1";
    b += ",\"reportingComponent\":\"phigate\",\"reportingInstance\":" + detail::json_quote(identity) + "}";
    RequestOptions req;
    req.method = "POST";
    req.path = "/api/v1/namespaces/" + url_escape(ing.ns) + "/events";
    req.body = std::move(b);
    req.content_type = "application/json";
    req.timeout = spec.request_timeout;
    client.request(std::move(req),
                   [weak = weak_from_this(), gen = generation, key, message = std::move(message)](
                       std::optional<Response> r, std::optional<TransportError> e) {
                     auto self = weak.lock();
                     if (!self || self->generation != gen) return;
                     self->in_flight = false;
                     if (r && (r->status == 201 || r->status == 200)) {
                       ++self->stats.events;
                       self->evented[key] = message;
                     } else {
                       ++self->stats.event_failures;
                       self->failed_event.insert(key);
                       self->note_failure("posting an Event on Ingress " + key + ": " +
                                          (e ? e->message : "answered " + std::to_string(r ? r->status : 0)));
                     }
                     self->pump();
                   });
  }
};

StatusWriter::StatusWriter(net::asio::io_context& io, Client& client, const config::KubernetesSpec& spec,
                           std::function<bool()> leading)
    : impl_(std::make_shared<Impl>(io, client, spec, std::move(leading))) {}

StatusWriter::~StatusWriter() {
  impl_->running = false;
  ++impl_->generation;
  impl_->timer.cancel();
}

void StatusWriter::start() {
  auto& i = *impl_;
  if (i.running) return;
  i.running = true;
  if (!i.service_name.empty()) i.poll_service();
  i.pump();
  i.schedule();
}

void StatusWriter::stop() {
  auto& i = *impl_;
  i.running = false;
  ++i.generation;
  i.timer.cancel();
  i.in_flight = false;
  i.service_in_flight = false;
}

void StatusWriter::update(std::vector<ServedIngress> served) {
  auto& i = *impl_;
  i.served.clear();
  for (auto& s : served) {
    auto key = s.ns + "/" + s.name;
    i.served.emplace(std::move(key), std::move(s));
  }
  i.failed_status.clear();
  i.failed_event.clear();
  i.pump();
}

std::vector<std::string> StatusWriter::addresses() const {
  return impl_->addresses;
}

StatusStats StatusWriter::stats() const {
  return impl_->stats;
}

}  // namespace phigate::kube
