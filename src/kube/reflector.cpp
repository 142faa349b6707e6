#include "phigate/kube/reflector.hpp"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "reflector_impl.hpp"

namespace phigate::kube {

namespace {

using Clock = std::chrono::steady_clock;

/// A LIST that keeps answering with a continue token, or pages whose sum is absurd, is a broken
/// (or hostile) server: stop and retry with back-off rather than loop or grow without bound.
constexpr std::uint64_t kMaxPages = 100'000;
constexpr std::size_t kMaxListBytes = 1024u << 20;
/// 410 on a fresh watch right after a LIST, again and again: after this many re-LISTs in a row
/// without a delivered event, the next one waits for the back-off.
constexpr int kMaxImmediateRelists = 2;
/// A watch that ends cleanly sooner than this without delivering anything is retried with back-off
/// (a server that closes every watch at once would otherwise make a hot loop).
constexpr auto kMinQuietWatch = std::chrono::seconds(1);
/// A watch that lasted this long counts as healthy: the back-off starts over.
constexpr auto kHealthyWatch = std::chrono::seconds(60);

std::mt19937_64& rng() {
  static thread_local std::mt19937_64 r{std::random_device{}()};
  return r;
}

double uniform(double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng());
}

/// The API server's text as it may go into our log: one line, bounded, printable ASCII.
std::string one_line(std::string_view text) {
  std::string out(text.substr(0, 300));
  for (auto& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = ' ';
  }
  return out;
}

std::string selectors_query(const Scope& scope) {
  std::string q;
  if (!scope.label_selector.empty()) q += "&labelSelector=" + url_escape(scope.label_selector);
  if (!scope.field_selector.empty()) q += "&fieldSelector=" + url_escape(scope.field_selector);
  return q;
}

/// The `message` of a Status body (the API server's error answer), if it is one; else "".
std::string status_message(std::string_view body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (body.empty() || parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return {};
  std::string_view msg;
  if (doc["message"].get(msg) != simdjson::SUCCESS) return {};
  return one_line(msg);
}

}  // namespace

const ResourceKind& ResourceKind::ingress() {
  static const ResourceKind k{"networking.k8s.io/v1", "ingresses", "Ingress", true};
  return k;
}
const ResourceKind& ResourceKind::ingress_class() {
  static const ResourceKind k{"networking.k8s.io/v1", "ingressclasses", "IngressClass", false};
  return k;
}
const ResourceKind& ResourceKind::service() {
  static const ResourceKind k{"v1", "services", "Service", true};
  return k;
}
const ResourceKind& ResourceKind::endpoint_slice() {
  static const ResourceKind k{"discovery.k8s.io/v1", "endpointslices", "EndpointSlice", true};
  return k;
}
const ResourceKind& ResourceKind::secret() {
  static const ResourceKind k{"v1", "secrets", "Secret", true};
  return k;
}
const ResourceKind& ResourceKind::config_map() {
  static const ResourceKind k{"v1", "configmaps", "ConfigMap", true};
  return k;
}

std::string collection_path(const ResourceKind& kind, const std::string& ns) {
  // Kubernetes API concepts: core group under /api/v1, named groups under /apis/<group>/<version>.
  std::string p = kind.group_version == "v1" ? "/api/v1" : "/apis/" + kind.group_version;
  if (kind.namespaced && !ns.empty()) p += "/namespaces/" + url_escape(ns);
  p += "/" + kind.plural;
  return p;
}

std::string detail::with_type_meta(std::string_view object_json, bool has_kind, bool has_api_version,
                                   const ResourceKind& kind) {
  // The object is a JSON object ("{...}", serialized by simdjson): insert the missing members
  // after the brace. Only missing ones, so that no key is duplicated.
  std::string head;
  if (!has_kind) head += "\"kind\":\"" + kind.kind + "\"";
  if (!has_api_version)
    head += std::string(head.empty() ? "" : ",") + "\"apiVersion\":\"" + kind.group_version + "\"";
  if (head.empty() || object_json.size() < 2) return std::string(object_json);
  std::string out;
  out.reserve(object_json.size() + head.size() + 1);
  out += '{';
  out += head;
  const auto rest = object_json.substr(1);
  if (rest.front() != '}') out += ',';
  out += rest;
  return out;
}

std::optional<detail::WatchEvent> detail::parse_watch_event(std::string_view line, const ResourceKind& kind,
                                                            std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (const auto err = parser.parse(line.data(), line.size()).get(doc)) {
    error = std::string("malformed watch event: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  std::string_view type;
  simdjson::dom::object object;
  if (doc["type"].get(type) != simdjson::SUCCESS) {
    error = "malformed watch event: no string `type`";
    return std::nullopt;
  }
  if (doc["object"].get(object) != simdjson::SUCCESS) {
    error = "malformed watch event: no object `object`";
    return std::nullopt;
  }
  WatchEvent ev;
  std::string_view rv;
  if (object["metadata"]["resourceVersion"].get(rv) == simdjson::SUCCESS) ev.resource_version = rv;
  if (type == "ADDED" || type == "MODIFIED" || type == "DELETED") {
    ev.type = type == "ADDED"      ? WatchEvent::Type::Added
              : type == "MODIFIED" ? WatchEvent::Type::Modified
                                   : WatchEvent::Type::Deleted;
    if (ev.resource_version.empty()) {
      error = "malformed watch event: " + std::string(type) + " object without metadata.resourceVersion";
      return std::nullopt;
    }
    std::string_view k, api;
    const bool has_kind = object["kind"].get(k) == simdjson::SUCCESS;
    const bool has_api = object["apiVersion"].get(api) == simdjson::SUCCESS;
    if ((has_kind && k != kind.kind) || (has_api && api != kind.group_version)) {
      error = "watch event of " + std::string(api) + " " + std::string(k) + " in a watch of " + kind.kind;
      return std::nullopt;
    }
    ev.object = with_type_meta(simdjson::to_string(object), has_kind, has_api, kind);
    return ev;
  }
  if (type == "BOOKMARK") {
    ev.type = WatchEvent::Type::Bookmark;
    return ev;
  }
  if (type == "ERROR") {
    // The object is a metav1.Status: 410 Gone / reason Expired means "re-LIST" (API concepts,
    // "Efficient detection of changes").
    ev.type = WatchEvent::Type::Error;
    std::int64_t code = 0;
    std::string_view reason, message;
    // Each optional: a missing or mistyped field leaves its default.
    if (object["code"].get(code) != simdjson::SUCCESS) code = 0;
    if (object["reason"].get(reason) != simdjson::SUCCESS) reason = {};
    if (object["message"].get(message) != simdjson::SUCCESS) message = {};
    ev.gone = code == 410 || reason == "Expired" || reason == "Gone";
    ev.resource_version.clear();
    ev.message = one_line(message);
    if (ev.message.empty()) ev.message = "code " + std::to_string(code) + " " + one_line(reason);
    return ev;
  }
  error = "malformed watch event: unknown type";
  return std::nullopt;
}

std::optional<detail::ListPage> detail::parse_list_page(std::string_view body, const ResourceKind& kind,
                                                        std::string& error) {
  simdjson::dom::parser parser(Client::kMaxBody);
  simdjson::dom::element doc;
  if (const auto err = parser.parse(body.data(), body.size()).get(doc)) {
    error = std::string("malformed LIST answer: ") + simdjson::error_message(err);
    return std::nullopt;
  }
  ListPage page;
  std::string_view rv, cont;
  if (doc["metadata"]["resourceVersion"].get(rv) != simdjson::SUCCESS || rv.empty()) {
    error = "malformed LIST answer: no metadata.resourceVersion";
    return std::nullopt;
  }
  page.resource_version = rv;
  if (doc["metadata"]["continue"].get(cont) == simdjson::SUCCESS) page.continue_token = cont;
  simdjson::dom::element items;
  if (doc["items"].get(items) != simdjson::SUCCESS || items.is_null()) return page;  // empty list
  simdjson::dom::array array;
  if (items.get(array) != simdjson::SUCCESS) {
    error = "malformed LIST answer: items is not a list";
    return std::nullopt;
  }
  for (const auto item : array) {
    simdjson::dom::object object;
    if (item.get(object) != simdjson::SUCCESS) {
      error = "malformed LIST answer: an item is not an object";
      return std::nullopt;
    }
    std::string_view k, api;
    const bool has_kind = object["kind"].get(k) == simdjson::SUCCESS && !k.empty();
    const bool has_api = object["apiVersion"].get(api) == simdjson::SUCCESS && !api.empty();
    if ((has_kind && k != kind.kind) || (has_api && api != kind.group_version)) {
      error = "LIST of " + kind.kind + " holds a " + std::string(api) + " " + std::string(k);
      return std::nullopt;
    }
    // Serialized again by simdjson (minified) rather than sliced from the body: the DOM has no
    // source offsets, and re-serializing yields exactly one well-formed object.
    page.items.push_back(with_type_meta(simdjson::to_string(object), has_kind, has_api, kind));
  }
  return page;
}

struct Reflector::Impl : std::enable_shared_from_this<Impl> {
  Impl(net::asio::io_context& io, Client& c, ResourceKind k, Scope s, const config::KubernetesSpec& sp,
       Handlers h)
      : client(c), kind(std::move(k)), scope(std::move(s)), spec(sp), handlers(std::move(h)), timer(io) {}

  Client& client;
  ResourceKind kind;
  Scope scope;
  config::KubernetesSpec spec;
  Handlers handlers;
  net::asio::steady_timer timer;

  bool started = false;
  bool stopped = false;
  bool synced = false;
  ReflectorState state = ReflectorState::Listing;
  bool state_reported = false;
  ReflectorStats stats;
  std::string rv;
  bool need_list = true;         // the next connect is a LIST (else a WATCH from `rv`)
  std::uint64_t generation = 0;  // bumps on every (re)connect: stale callbacks are ignored

  // LIST in progress.
  std::vector<std::string> items;
  std::size_t list_bytes = 0;
  std::uint64_t list_pages = 0;

  // WATCH in progress.
  std::shared_ptr<Client::Stream> stream;
  Clock::time_point watch_started;
  bool watch_delivered = false;

  int attempts = 0;  // consecutive failures (back-off exponent)
  int immediate_relists = 0;

  void set_state(ReflectorState s, const std::string& why) {
    if (state_reported && s == state) return;
    state = s;
    state_reported = true;
    if (handlers.on_state) handlers.on_state(s, why);
  }

  std::string base_path() const { return collection_path(kind, scope.ns); }

  void connect() {
    if (stopped) return;
    if (need_list) {
      items.clear();
      list_bytes = 0;
      list_pages = 0;
      list_page("");
    } else {
      watch();
    }
  }

  void list_page(const std::string& cont) {
    const auto gen = ++generation;
    RequestOptions o;
    o.path = base_path() + "?limit=" + std::to_string(std::max<std::int64_t>(1, spec.page_size));
    if (!cont.empty()) o.path += "&continue=" + url_escape(cont);
    o.path += selectors_query(scope);
    o.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(spec.request_timeout);
    std::weak_ptr<Impl> weak = shared_from_this();
    client.request(std::move(o),
                   [weak, gen, cont](std::optional<Response> r, std::optional<TransportError> e) {
                     const auto self = weak.lock();
                     if (!self || self->stopped || gen != self->generation) return;
                     self->on_list_answer(cont, std::move(r), std::move(e));
                   });
  }

  void on_list_answer(const std::string& cont, std::optional<Response> r, std::optional<TransportError> e) {
    if (e || !r) {
      fail(e ? e->message : "no answer", false);
      return;
    }
    if (r->status == 410 && !cont.empty()) {
      // The continue token expired (compaction) mid-LIST: the pages so far are from an older
      // snapshot, so start over from the first page (API concepts, "Retrieving large results").
      ++stats.relists_gone;
      if (immediate_relists++ < kMaxImmediateRelists) {
        connect();
      } else {
        fail("LIST continue token expired again", false);
      }
      return;
    }
    if (r->status != 200) {
      http_failure(*r, "LIST");
      return;
    }
    std::string error;
    auto page = detail::parse_list_page(r->body, kind, error);
    if (!page) {
      fail(error, false);
      return;
    }
    ++stats.pages;
    ++list_pages;
    list_bytes += r->body.size();
    for (auto& i : page->items) items.push_back(std::move(i));
    if (list_bytes > kMaxListBytes || (!page->continue_token.empty() && list_pages >= kMaxPages)) {
      fail("LIST larger than " + std::to_string(kMaxPages) + " pages or " + std::to_string(kMaxListBytes) +
               " bytes: refused",
           false);
      return;
    }
    if (!page->continue_token.empty()) {
      list_page(page->continue_token);
      return;
    }
    ++stats.lists;
    rv = page->resource_version;
    need_list = false;
    synced = true;
    auto objects = std::move(items);
    items.clear();
    set_state(ReflectorState::Watching, "listed " + std::to_string(objects.size()) + " objects");
    if (handlers.on_list) handlers.on_list(std::move(objects));
    if (stopped) return;
    watch();
  }

  void watch() {
    if (stopped) return;
    const auto gen = ++generation;
    const auto base = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::seconds>(spec.watch_timeout).count());
    // Jittered a little (as client-go) so that many watches do not all renew at the same moment.
    const auto seconds =
        static_cast<std::int64_t>(std::llround(static_cast<double>(base) * uniform(1.0, 1.1)));
    std::string path = base_path() + "?watch=1&resourceVersion=" + url_escape(rv) +
                       "&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(seconds) +
                       selectors_query(scope);
    // The server ends the watch after `seconds`; silence well past that is a dead connection.
    const auto idle = std::chrono::milliseconds((seconds + 30) * 1000);
    ++stats.watches;
    watch_started = Clock::now();
    watch_delivered = false;
    std::weak_ptr<Impl> weak = shared_from_this();
    stream = client.stream(
        std::move(path), idle,
        [weak, gen](std::string_view line) {
          const auto self = weak.lock();
          if (!self || self->stopped || gen != self->generation) return;
          self->on_line(line);
        },
        [weak, gen](std::optional<Response> r, std::optional<TransportError> e) {
          const auto self = weak.lock();
          if (!self || self->stopped || gen != self->generation) return;
          self->on_watch_end(std::move(r), std::move(e));
        });
  }

  void end_stream() {
    ++generation;  // no further line or end callback of this stream is acted upon
    if (stream) stream->cancel();
    stream.reset();
  }

  void on_line(std::string_view line) {
    std::string error;
    auto ev = detail::parse_watch_event(line, kind, error);
    if (!ev) {
      // What was lost with this line is unknown (it could be a deletion): re-LIST after the
      // back-off rather than re-watch, which would only replay the same line.
      end_stream();
      need_list = true;
      fail(error, false);
      return;
    }
    switch (ev->type) {
      case detail::WatchEvent::Type::Error:
        end_stream();
        if (ev->gone) {
          relist_gone();
        } else {
          fail("watch ERROR: " + ev->message, false);
        }
        return;
      case detail::WatchEvent::Type::Bookmark:
        ++stats.bookmarks;
        if (!ev->resource_version.empty()) rv = ev->resource_version;
        progress();
        return;
      default:
        break;
    }
    rv = ev->resource_version;
    ++stats.events;
    progress();
    const auto type = ev->type == detail::WatchEvent::Type::Added      ? EventType::Added
                      : ev->type == detail::WatchEvent::Type::Modified ? EventType::Modified
                                                                       : EventType::Deleted;
    if (handlers.on_event) handlers.on_event(type, ev->object);
  }

  void progress() {
    watch_delivered = true;
    // Not reset on any line: a server that sends one good line and then garbage (or 410) would
    // otherwise make us re-LIST at the initial back-off forever.
    if (Clock::now() - watch_started >= kHealthyWatch) healthy();
    // Back from a failure: the watch works again (reported once, on its first line).
    set_state(ReflectorState::Watching, "watch resumed from resourceVersion " + rv);
  }

  /// The back-off starts over (a watch that ended cleanly having delivered events, or lasted a while).
  void healthy() {
    attempts = 0;
    immediate_relists = 0;
  }

  void relist_gone() {
    ++stats.relists_gone;
    need_list = true;
    if (immediate_relists++ < kMaxImmediateRelists) {
      set_state(ReflectorState::Listing, "resourceVersion " + rv + " expired (410 Gone): re-listing");
      connect();
    } else {
      fail("resourceVersion expired (410 Gone) again right after a LIST", false);
    }
  }

  void on_watch_end(std::optional<Response> r, std::optional<TransportError> e) {
    stream.reset();
    const auto lasted = Clock::now() - watch_started;
    if (lasted >= kHealthyWatch || (r && r->status == 200 && watch_delivered)) healthy();
    if (e || !r) {
      fail(e ? "watch: " + e->message : "watch: no answer", false);
      return;
    }
    if (r->status == 200) {
      // The server's timeoutSeconds ran out: carry on from the last resourceVersion at once.
      if (!watch_delivered && lasted < kMinQuietWatch) {
        fail("watch ended at once without events", false);
        return;
      }
      watch();
      return;
    }
    if (r->status == 410) {
      relist_gone();
      return;
    }
    http_failure(*r, "WATCH");
  }

  void http_failure(const Response& r, const char* what) {
    auto msg = status_message(r.body);
    std::string why = std::string(what) + " answered " + std::to_string(r.status);
    if (!msg.empty()) why += ": " + msg;
    fail(why, r.status == 401 || r.status == 403);
  }

  void fail(const std::string& why, bool forbidden) {
    if (stopped) return;
    ++stats.failures;
    // initial * 2^attempts, capped, ±20 % jitter (client-go's wait.Backoff) so that reflectors
    // failing together do not retry together.
    const double initial = std::chrono::duration<double>(spec.backoff_initial).count();
    const double cap = std::chrono::duration<double>(spec.backoff_max).count();
    const double base = std::min(cap, initial * std::pow(2.0, std::min(attempts, 30)));
    const double delay = std::max(0.001, base * uniform(0.8, 1.2));
    ++attempts;
    set_state(forbidden ? ReflectorState::Forbidden : ReflectorState::Backoff, why);
    const auto gen = ++generation;
    timer.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(delay)));
    std::weak_ptr<Impl> weak = shared_from_this();
    timer.async_wait([weak, gen](const net::error_code& ec) {
      const auto self = weak.lock();
      if (ec || !self || self->stopped || gen != self->generation) return;
      self->connect();
    });
  }

  void stop() {
    stopped = true;
    ++generation;
    if (stream) stream->cancel();
    stream.reset();
    timer.cancel();
  }
};

Reflector::Reflector(net::asio::io_context& io, Client& client, ResourceKind kind, Scope scope,
                     const config::KubernetesSpec& spec, Handlers handlers)
    : impl_(
          std::make_shared<Impl>(io, client, std::move(kind), std::move(scope), spec, std::move(handlers))) {}

Reflector::~Reflector() {
  stop();
}

void Reflector::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->set_state(ReflectorState::Listing, "starting");
  impl_->connect();
}

void Reflector::stop() {
  impl_->stop();
}

bool Reflector::synced() const noexcept {
  return impl_->synced;
}

ReflectorState Reflector::state() const noexcept {
  return impl_->state;
}

const ReflectorStats& Reflector::stats() const noexcept {
  return impl_->stats;
}

std::string Reflector::describe() const {
  const auto& s = impl_->scope;
  std::string d = impl_->kind.kind;
  const auto eq = s.field_selector.find("metadata.name=");
  if (eq == 0 && !s.ns.empty()) {
    d += " " + s.ns + "/" + s.field_selector.substr(std::string_view("metadata.name=").size());
  } else if (!impl_->kind.namespaced) {
    d += " (cluster)";
  } else if (s.ns.empty()) {
    d += " in all namespaces";
  } else {
    d += " in namespace " + s.ns;
  }
  if (!s.label_selector.empty()) d += " with labels " + s.label_selector;
  if (!s.field_selector.empty() && eq != 0) d += " with fields " + s.field_selector;
  return d;
}

const std::string& Reflector::resource_version() const noexcept {
  return impl_->rv;
}

}  // namespace phigate::kube
