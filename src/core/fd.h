// UniqueFd: a move-only owner of a file descriptor with an explicit Close() that reports errors.
#pragma once

#include <unistd.h>

#include <utility>

#include "core/status.h"

namespace sluice {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  bool valid() const { return fd_ >= 0; }
  int get() const { return fd_; }

  // Closes the descriptor; close(2) errors (EIO on NFS, say) are reported, not swallowed.
  Status Close() {
    if (fd_ < 0) return Status::Ok();
    int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) return Status::FromErrno(errno, "close");
    return Status::Ok();
  }

 private:
  int fd_ = -1;
};

}  // namespace sluice
