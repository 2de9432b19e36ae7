// Thin wrappers over hiredis: Endpoint (where a Redis is, parsed from a URL), Reply (a reply
// copied into plain values) and Conn (one connection: commands and pipelines). The only
// translation unit that includes hiredis.h is redis_conn.cc.
//
// Errors: a connection that cannot be made or is lost, a server loading its data, a
// replica that may not write (LOADING, MASTERDOWN, READONLY, TRYAGAIN, BUSY) are Unavailable
// (retry, maybe after finding the master again); other error replies are FailedPrecondition
// with the server's text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

struct redisContext;

namespace sluice::redis {

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;  // set: connect to this socket instead of host:port
  int db = 0;
  std::string username;  // ACL user (AUTH user password); empty: AUTH password
  std::string password;
  // "redis+sentinel://": where the sentinels are and the name of the master they watch.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string master_name;
};

// redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], rediss is refused (no TLS), unix:///PATH[?db=N]
// [&password=P], redis+sentinel://[:PASSWORD@]H1:P1,H2:P2/MASTER[/DB].
Result<Endpoint> ParseUrl(const std::string& url);
// "host H port P db N" (or "socket PATH db N", or "master M via sentinels H:P,…"); never a
// password.
std::string Describe(const Endpoint& e);

struct Reply {
  enum class Type { kNil, kString, kInteger, kArray, kStatus, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  int64_t integer = 0;
  std::vector<Reply> elements;

  bool nil() const { return type == Type::kNil; }
  bool error() const { return type == Type::kError; }
  // The integer of an integer reply, or of a string holding one; `fallback` otherwise.
  int64_t Int(int64_t fallback = 0) const;
};

// A Status for an error reply, by its first word (see above).
Status ErrorOf(const Reply& r, const std::string& context);

class Conn {
 public:
  Conn() = default;
  Conn(Conn&&) noexcept;
  Conn& operator=(Conn&&) noexcept;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;
  ~Conn();

  // Connects to host:port or the socket (not through sentinels: see FindMaster), then AUTH
  // and SELECT. `timeout_ms` bounds the connect and every later command (0: none).
  static Result<Conn> Connect(const Endpoint& e, int timeout_ms);
  // Asks the sentinels, in turn, where `e.master_name` is now, and returns `e` pointed at it.
  static Result<Endpoint> FindMaster(const Endpoint& e, int timeout_ms);

  bool connected() const { return ctx_ != nullptr; }
  // Sets the timeout of later commands (a blocking read needs one past its BLOCK time).
  void SetTimeout(int timeout_ms);

  // One command. An error reply is returned as a Status (ErrorOf); a lost connection is
  // Unavailable and leaves the Conn unconnected.
  Result<Reply> Command(const std::vector<std::string>& argv);
  // Many commands, one round trip. Error replies stay in the result (one Reply each); only
  // a lost connection fails the whole.
  Result<std::vector<Reply>> Pipeline(const std::vector<std::vector<std::string>>& commands);

 private:
  Status Lost(const std::string& what);
  redisContext* ctx_ = nullptr;
  std::string server_;
};

}  // namespace sluice::redis
