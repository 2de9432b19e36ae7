// Sessions: random ids and CSRF tokens, in memory, ended when idle.
#include "api/sessions.h"

#include <openssl/rand.h>

#include <algorithm>

#include "core/text.h"

namespace sluice::api {
namespace {

std::string RandomHex(size_t bytes) {
  unsigned char raw[32];
  bytes = std::min(bytes, sizeof(raw));
  if (RAND_bytes(raw, static_cast<int>(bytes)) != 1) std::abort();  // no entropy: never guess
  return HexBytes(std::string_view(reinterpret_cast<const char*>(raw), bytes));
}

}  // namespace

std::optional<std::string> CookieValue(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    size_t end = header.find(';', pos);
    if (end == std::string::npos) end = header.size();
    std::string part = header.substr(pos, end - pos);
    size_t b = part.find_first_not_of(' ');
    if (b != std::string::npos) part = part.substr(b);
    if (part.size() > name.size() && part.compare(0, name.size(), name) == 0 &&
        part[name.size()] == '=') {
      return part.substr(name.size() + 1);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

Sessions::Session Sessions::Create() {
  Session s{RandomHex(32), RandomHex(32)};
  std::lock_guard<std::mutex> lock(mu_);
  if (live_.size() >= kMax) {
    auto oldest = std::min_element(live_.begin(), live_.end(), [](const auto& a, const auto& b) {
      return a.second.used < b.second.used;
    });
    live_.erase(oldest);
  }
  live_[s.id] = Entry{s.csrf, Clock::now()};
  return s;
}

std::optional<Sessions::Session> Sessions::FromCookie(const std::string& cookie_header) {
  auto id = CookieValue(cookie_header, kCookie);
  if (!id || id->empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(*id);
  if (it == live_.end()) return std::nullopt;
  auto now = Clock::now();
  if (now - it->second.used > idle_) {
    live_.erase(it);
    return std::nullopt;
  }
  it->second.used = now;
  return Session{it->first, it->second.csrf};
}

void Sessions::Remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(id);
}

}  // namespace sluice::api
