// Sessions: the browser's way in when the daemon has an API token. The dashboard asks for the
// token once and trades it (POST /api/v1/session) for a session: an HttpOnly, SameSite=Strict
// cookie naming it (EventSource cannot send an Authorization header) and a CSRF token that
// every state-changing call must carry in X-CSRF-Token. The token itself never goes into a
// URL or the page. Sessions live in memory: a restart logs everyone out.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace sluice::api {

class Sessions {
 public:
  static constexpr char kCookie[] = "sluice_session";
  static constexpr size_t kMax = 10000;  // the least recently used goes beyond this

  struct Session {
    std::string id;
    std::string csrf;
  };
  // A new session with fresh random id and CSRF token.
  Session Create();
  // The session named by the request's Cookie header, if it is live (and renews it).
  std::optional<Session> FromCookie(const std::string& cookie_header);
  void Remove(const std::string& id);
  // Sessions unused this long end.
  void set_idle_limit(std::chrono::seconds s) { idle_ = s; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string csrf;
    Clock::time_point used;
  };
  std::mutex mu_;
  std::map<std::string, Entry> live_;
  std::chrono::seconds idle_{12 * 3600};
};

// The value of cookie `name` in a Cookie header ("a=1; b=2"), if present.
std::optional<std::string> CookieValue(const std::string& header, const std::string& name);

}  // namespace sluice::api
