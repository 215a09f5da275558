// Which local address peers can reach: Gloo binds its listening socket to one address, and on a
// machine whose hostname resolves to 127.0.1.1 (Debian's default) the hostname is the wrong one.
#pragma once
#include <string>

namespace koner::dist {

// True for 127.0.0.0/8, ::1 and "localhost": a single-machine job, all traffic on loopback.
bool IsLoopback(const std::string& host);

// The local address the kernel would use to reach host:port (no packet is sent), or "" when the
// host does not resolve or has no route.
std::string LocalAddressToward(const std::string& host, int port);

}  // namespace koner::dist
