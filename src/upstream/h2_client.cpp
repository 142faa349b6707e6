// The sans-I/O HTTP/2 client session (h2_client_impl.hpp): nghttp2 does all framing, HPACK and
// stream state; this file keeps per-stream event queues and the limits nghttp2 does not enforce.
#include <algorithm>
#include <cstring>

#include "h2_client_impl.hpp"

namespace phigate::upstream::detail {

namespace {

constexpr std::size_t kMemHeader = 16;  // size prefix, kept 16-aligned for any type

/// RFC 9113 §8.2.2: connection-specific fields never travel in HTTP/2; Host becomes :authority.
bool connection_specific(std::string_view name) noexcept {
  for (std::string_view n : {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
                             "host", "http2-settings"}) {
    if (http::iequals(name, n)) return true;
  }
  return false;
}

std::string lower(std::string_view v) {
  std::string out(v);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

nghttp2_nv nv(const std::string& name, const std::string& value) {
  return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// --- memory budget (nghttp2_mem): every allocation is counted; over budget, nghttp2 gets null
// and fails the connection with NOMEM instead of growing without bound. ---

void* H2ClientSession::mem_malloc(std::size_t size, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  if (self->mem_used_ + size > self->limits_.memory_bytes) return nullptr;
  auto* p = static_cast<char*>(std::malloc(size + kMemHeader));
  if (p == nullptr) return nullptr;
  std::memcpy(p, &size, sizeof size);
  self->mem_used_ += size;
  return p + kMemHeader;
}

void H2ClientSession::mem_free(void* ptr, void* user) {
  if (ptr == nullptr) return;
  auto* self = static_cast<H2ClientSession*>(user);
  char* p = static_cast<char*>(ptr) - kMemHeader;
  std::size_t size = 0;
  std::memcpy(&size, p, sizeof size);
  self->mem_used_ -= size;
  std::free(p);
}

void* H2ClientSession::mem_calloc(std::size_t n, std::size_t size, void* user) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = mem_malloc(n * size, user);
  if (p != nullptr) std::memset(p, 0, n * size);
  return p;
}

void* H2ClientSession::mem_realloc(void* ptr, std::size_t size, void* user) {
  if (ptr == nullptr) return mem_malloc(size, user);
  if (size == 0) {
    mem_free(ptr, user);
    return nullptr;
  }
  std::size_t old = 0;
  std::memcpy(&old, static_cast<char*>(ptr) - kMemHeader, sizeof old);
  void* p = mem_malloc(size, user);
  if (p == nullptr) return nullptr;
  std::memcpy(p, ptr, std::min(old, size));
  mem_free(ptr, user);
  return p;
}

H2ClientSession::H2ClientSession(const H2ClientLimits& limits) : limits_(limits) {
  mem_ = nghttp2_mem{this, mem_malloc, mem_free, mem_calloc, mem_realloc};
  nghttp2_session_callbacks* cb = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0) return;
  nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_option* opt = nullptr;
  if (nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cb);
    return;
  }
  // Windows go back only as the caller forwards bytes (backpressure; memory bound per stream).
  nghttp2_option_set_no_auto_window_update(opt, 1);
  // SETTINGS/PING floods: acknowledgements we have not sent yet, and entries of one SETTINGS.
  nghttp2_option_set_max_outbound_ack(opt, 100);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_peer_max_concurrent_streams(opt, 100);  // until the backend's SETTINGS arrive
  const int rv = nghttp2_session_client_new3(&session_, cb, this, opt, &mem_);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rv != 0) {
    session_ = nullptr;
    return;
  }
  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},  // a PUSH_PROMISE is then a PROTOCOL_ERROR (§6.5.2)
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, static_cast<std::uint32_t>(limits_.max_header_list_bytes)},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  if (limits_.connection_window > 65535) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<std::int32_t>(limits_.connection_window));
  }
}

H2ClientSession::~H2ClientSession() {
  if (session_ != nullptr) nghttp2_session_del(session_);
}

H2ClientSession::Stream* H2ClientSession::find(std::int32_t id) noexcept {
  const auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

void H2ClientSession::fail(std::string why) {
  if (error_.empty()) error_ = std::move(why);
}

void H2ClientSession::push(std::int32_t id, Stream& s, H2StreamEvent e) {
  if (s.released || s.ended) return;
  if (e.kind == H2StreamEvent::Kind::End || e.kind == H2StreamEvent::Kind::Reset) s.ended = true;
  s.events.push_back(std::move(e));
  touched_.push_back(id);
}

void H2ClientSession::fail_stream(std::int32_t id, Stream& s, std::uint32_t code, std::string reason) {
  H2StreamEvent e;
  e.kind = H2StreamEvent::Kind::Reset;
  e.error_code = code;
  e.reason = std::move(reason);
  push(id, s, std::move(e));
}

std::int32_t H2ClientSession::submit(const http::MessageHead& head, std::string_view authority,
                                     std::string_view scheme, bool end_stream) {
  if (session_ == nullptr || !error_.empty()) return NGHTTP2_ERR_INVALID_STATE;
  if (goaway_) return NGHTTP2_ERR_START_STREAM_NOT_ALLOWED;
  std::vector<std::string> strings;
  strings.reserve(8 + 2 * head.headers.size());
  const auto add = [&](std::string name, std::string value) {
    strings.push_back(std::move(name));
    strings.push_back(std::move(value));
  };
  add(":method", head.method);
  add(":scheme", std::string(scheme));
  add(":authority", std::string(authority));
  add(":path", head.target);
  for (const auto& h : head.headers) {
    if (connection_specific(h.name)) continue;
    if (http::iequals(h.name, "te")) {
      // The only TE allowed in HTTP/2 (§8.2.2); gRPC servers require it.
      if (http::iequals(h.value, "trailers")) add("te", "trailers");
      continue;
    }
    add(lower(h.name), h.value);
  }
  std::vector<nghttp2_nv> nva;
  nva.reserve(strings.size() / 2);
  for (std::size_t i = 0; i + 1 < strings.size(); i += 2) nva.push_back(nv(strings[i], strings[i + 1]));
  nghttp2_data_provider provider{};
  provider.read_callback = read_body_cb;
  const std::int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                                 end_stream ? nullptr : &provider, this);
  if (id < 0) return id;
  auto& s = streams_[id];
  s.out_end = end_stream;
  ++active_;
  return id;
}

ssize_t H2ClientSession::read_body_cb(nghttp2_session* session, std::int32_t id, std::uint8_t* buf,
                                      std::size_t length, std::uint32_t* flags, nghttp2_data_source* /*src*/,
                                      void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  Stream* s = self->find(id);
  if (s == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const std::size_t left = s->out.size() - s->out_pos;
  const std::size_t n = std::min(left, length);
  if (n > 0) std::memcpy(buf, s->out.data() + s->out_pos, n);
  s->out_pos += n;
  if (s->out_pos == s->out.size()) {
    s->out.clear();
    s->out_pos = 0;
  }
  if (s->out.empty() && s->out_end) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (s->out_trailers) {
      std::vector<std::string> strings;
      for (const auto& h : s->trailers) {
        if (connection_specific(h.name) || h.name.empty() || h.name[0] == ':') continue;
        strings.push_back(lower(h.name));
        strings.push_back(h.value);
      }
      std::vector<nghttp2_nv> nva;
      for (std::size_t i = 0; i + 1 < strings.size(); i += 2) nva.push_back(nv(strings[i], strings[i + 1]));
      if (!nva.empty()) {
        *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        if (nghttp2_submit_trailer(session, id, nva.data(), nva.size()) != 0) {
          return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
      }
    }
    return static_cast<ssize_t>(n);
  }
  if (n == 0) {
    s->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  return static_cast<ssize_t>(n);
}

bool H2ClientSession::send_body(std::int32_t id, std::string_view bytes, bool end) {
  Stream* s = find(id);
  if (s == nullptr || s->closed || s->out_end || session_ == nullptr) return false;
  s->out.append(bytes);
  s->out_end = end;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return true;
}

bool H2ClientSession::send_trailers(std::int32_t id, const http::HeaderList& trailers) {
  Stream* s = find(id);
  if (s == nullptr || s->closed || s->out_end || session_ == nullptr) return false;
  s->trailers = trailers;
  s->out_trailers = true;
  s->out_end = true;
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, id);
  }
  return true;
}

std::size_t H2ClientSession::queued_body(std::int32_t id) const noexcept {
  const auto it = streams_.find(id);
  return it == streams_.end() ? 0 : it->second.out.size() - it->second.out_pos;
}

bool H2ClientSession::receive(std::string_view bytes) {
  if (session_ == nullptr) return false;
  if (!error_.empty()) return false;
  const auto rv =
      nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  if (rv < 0) {
    fail(std::string("HTTP/2 from the backend: ") + nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  if (!error_.empty()) return false;
  return true;
}

void H2ClientSession::produce(std::string& out, std::size_t max) {
  if (session_ == nullptr) return;
  // Bounded: at most `max` bytes (plus one chunk) per call; the writer calls again.
  while (out.size() < max) {
    const std::uint8_t* data = nullptr;
    const auto n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fail(std::string("HTTP/2 to the backend: ") + nghttp2_strerror(static_cast<int>(n)));
      return;
    }
    if (n == 0) return;
    out.append(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n));
  }
}

bool H2ClientSession::want_write() const noexcept {
  return session_ != nullptr && nghttp2_session_want_write(session_) != 0;
}

bool H2ClientSession::alive() const noexcept {
  return session_ != nullptr && error_.empty() &&
         (nghttp2_session_want_read(session_) != 0 || nghttp2_session_want_write(session_) != 0);
}

bool H2ClientSession::pop(std::int32_t id, H2StreamEvent& e) {
  Stream* s = find(id);
  if (s == nullptr || s->events.empty()) return false;
  e = std::move(s->events.front());
  s->events.pop_front();
  if (e.kind == H2StreamEvent::Kind::Data) s->queued_bytes -= e.data.size();
  return true;
}

std::vector<std::int32_t> H2ClientSession::take_touched() {
  std::vector<std::int32_t> out;
  out.swap(touched_);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void H2ClientSession::consume(std::int32_t id, std::size_t n) {
  Stream* s = find(id);
  if (s == nullptr || session_ == nullptr) return;
  n = std::min(n, s->unconsumed);
  s->unconsumed -= n;
  if (n == 0) return;
  if (s->closed) {
    nghttp2_session_consume_connection(session_, n);
  } else {
    nghttp2_session_consume(session_, id, n);
  }
}

void H2ClientSession::cancel(std::int32_t id, std::uint32_t code) {
  Stream* s = find(id);
  if (s == nullptr || session_ == nullptr) return;
  if (!s->closed) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, code);
  s->events.clear();
  s->queued_bytes = 0;
  if (!s->ended) {
    s->ended = true;
    H2StreamEvent e;
    e.kind = H2StreamEvent::Kind::Reset;
    e.error_code = code;
    e.reason = "cancelled";
    s->events.push_back(std::move(e));
    touched_.push_back(id);
  }
}

void H2ClientSession::release(std::int32_t id) {
  Stream* s = find(id);
  if (s == nullptr) return;
  if (session_ != nullptr && s->unconsumed > 0) {
    // Bytes the caller will never forward still count against the connection window.
    nghttp2_session_consume_connection(session_, s->unconsumed);
    s->unconsumed = 0;
  }
  if (!s->closed) {
    if (session_ != nullptr) nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    s->released = true;
    s->events.clear();
    return;  // erased when nghttp2 closes it
  }
  streams_.erase(id);
}

std::uint32_t H2ClientSession::peer_max_concurrent() const noexcept {
  if (session_ == nullptr) return 0;
  return nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

void H2ClientSession::shutdown() {
  if (session_ == nullptr) return;
  nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
}

// --- callbacks ---

int H2ClientSession::on_begin_frame(nghttp2_session* session, const nghttp2_frame_hd* hd, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  switch (hd->type) {
    case NGHTTP2_CONTINUATION: {
      // CVE-2024-27316: a header block split over endless CONTINUATION frames (empty ones cost
      // HPACK nothing, so the header byte count alone does not stop them).
      Stream* s = self->find(hd->stream_id);
      if (s != nullptr && ++s->continuations > self->limits_.max_continuation_frames) {
        self->fail("backend sent too many CONTINUATION frames");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    }
    case NGHTTP2_RST_STREAM:
      // A backend resetting streams that are not open (never opened, or long closed) is noise at
      // best, an RST storm at worst: bounded per connection.
      if (nghttp2_session_find_stream(session, hd->stream_id) == nullptr &&
          ++self->unknown_resets_ > self->limits_.max_unknown_resets) {
        self->fail("backend sent too many RST_STREAM frames for streams that are not open");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
    case NGHTTP2_PRIORITY:
      if (++self->control_frames_ > self->limits_.max_control_frames) {
        self->fail("backend sent too many control frames");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    case NGHTTP2_WINDOW_UPDATE:
      if (hd->stream_id == 0 && ++self->control_frames_ > self->limits_.max_control_frames) {
        self->fail("backend sent too many control frames");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
      }
      break;
    default:
      break;
  }
  return 0;
}

int H2ClientSession::on_begin_headers(nghttp2_session* /*session*/, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  Stream* s = self->find(frame->hd.stream_id);
  if (s == nullptr) return 0;
  s->fields.clear();
  s->status = 0;
  s->header_bytes = 0;
  s->continuations = 0;
  s->header_too_large = false;
  return 0;
}

int H2ClientSession::on_header(nghttp2_session* /*session*/, const nghttp2_frame* frame,
                               const std::uint8_t* name, std::size_t namelen, const std::uint8_t* value,
                               std::size_t valuelen, std::uint8_t /*flags*/, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  const std::int32_t id = frame->hd.stream_id;
  Stream* s = self->find(id);
  if (s == nullptr) return 0;
  // RFC 9113 §6.5.2's accounting (name + value + 32 per field): a backend's huge or endless
  // header block ends its stream, never our memory.
  s->header_bytes += namelen + valuelen + 32;
  if (s->header_bytes > self->limits_.max_header_list_bytes) {
    if (!s->header_too_large) {
      s->header_too_large = true;
      self->fail_stream(id, *s, NGHTTP2_INTERNAL_ERROR, "response header list too large");
    }
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
  }
  const std::string_view n(reinterpret_cast<const char*>(name), namelen);
  const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
  if (n == ":status") {
    int st = 0;
    for (char c : v) st = st * 10 + (c - '0');  // nghttp2 checked: three digits
    s->status = st;
    return 0;
  }
  if (!n.empty() && n[0] == ':') return 0;
  s->fields.add(n, v);
  return 0;
}

int H2ClientSession::on_frame_recv(nghttp2_session* /*session*/, const nghttp2_frame* frame, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_ = true;
    return 0;
  }
  const std::int32_t id = frame->hd.stream_id;
  Stream* s = self->find(id);
  if (s == nullptr) return 0;
  if (frame->hd.type == NGHTTP2_HEADERS) {
    if (s->header_too_large) return 0;
    H2StreamEvent e;
    if (!s->got_final) {
      if (s->status >= 100 && s->status < 200) {
        s->fields.clear();  // 1xx: skipped (RFC 9110 §15.2); the final head follows
        return 0;
      }
      s->got_final = true;
      e.kind = H2StreamEvent::Kind::Headers;
      e.status = s->status;
    } else {
      e.kind = H2StreamEvent::Kind::Trailers;  // nghttp2 checked END_STREAM is set
    }
    e.fields = std::move(s->fields);
    s->fields = http::HeaderList();
    self->push(id, *s, std::move(e));
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && s->got_final) {
    H2StreamEvent e;
    e.kind = H2StreamEvent::Kind::End;
    self->push(id, *s, std::move(e));
  }
  return 0;
}

int H2ClientSession::on_data_chunk(nghttp2_session* session, std::uint8_t /*flags*/, std::int32_t id,
                                   const std::uint8_t* data, std::size_t len, void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  Stream* s = self->find(id);
  if (s == nullptr || s->released || s->ended) {
    // Nobody will forward these bytes: give the window back now.
    nghttp2_session_consume(session, id, len);
    return 0;
  }
  s->unconsumed += len;
  if (s->queued_bytes + len > self->limits_.max_queued_events_bytes) {
    // Only a backend ignoring our window could queue this much (the window bounds it).
    self->fail_stream(id, *s, NGHTTP2_FLOW_CONTROL_ERROR, "backend exceeded the stream window");
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  H2StreamEvent e;
  e.kind = H2StreamEvent::Kind::Data;
  e.data.assign(reinterpret_cast<const char*>(data), len);
  s->queued_bytes += len;
  self->push(id, *s, std::move(e));
  return 0;
}

int H2ClientSession::on_stream_close(nghttp2_session* session, std::int32_t id, std::uint32_t code,
                                     void* user) {
  auto* self = static_cast<H2ClientSession*>(user);
  Stream* s = self->find(id);
  if (s == nullptr) return 0;
  if (!s->closed) {
    s->closed = true;
    if (self->active_ > 0) --self->active_;
  }
  if (s->released) {
    if (s->unconsumed > 0) nghttp2_session_consume_connection(session, s->unconsumed);
    self->streams_.erase(id);
    return 0;
  }
  if (!s->ended) {
    // Closed before the response ended: RST_STREAM from the backend, or ours after a limit.
    self->fail_stream(id, *s, code == 0 ? std::uint32_t{NGHTTP2_INTERNAL_ERROR} : code,
                      code == NGHTTP2_REFUSED_STREAM ? "backend refused the stream" : "stream reset");
  }
  self->touched_.push_back(id);
  return 0;
}

}  // namespace phigate::upstream::detail
