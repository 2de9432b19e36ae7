// UniqueProcessName: see identity.h.
#include "core/identity.h"

#include <unistd.h>

#include <cstdio>
#include <random>

namespace sluice {

std::string UniqueProcessName() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::random_device rd;
  char tail[16];
  std::snprintf(tail, sizeof(tail), "%06x", rd() & 0xffffff);
  return std::string(host) + ":" + std::to_string(getpid()) + ":" + tail;
}

}  // namespace sluice
