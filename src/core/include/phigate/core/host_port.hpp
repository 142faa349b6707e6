#pragma once
// "host:port" addresses as written in configuration (listeners, backends, admin). Sans-I/O.
#include <cstdint>
#include <string>
#include <string_view>

namespace phigate::core {

/// "host:port" / "[v6]:port" → host (brackets removed) and port. False when malformed: no port, an
/// empty host or port, an unbracketed IPv6 literal ("::1:80" is ambiguous), anything but digits in
/// the port, or a port above 65535. Port 0 is accepted (kernel-chosen listeners).
bool split_host_port(std::string_view text, std::string& host, std::uint16_t& port);

}  // namespace phigate::core
