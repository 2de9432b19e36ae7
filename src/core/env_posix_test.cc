// The real filesystem's Env: whether a file is still open for writing, and what testing that
// may not do to the process.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "core/env.h"
#include "core/fd.h"
#include "core/test_util.h"

namespace sluice {
namespace {

TEST(PosixEnvTest, AFileOpenForWritingIsToldApart) {
  testing::TempDir dir;
  std::string path = dir.Sub("a.json");
  testing::WriteAll(path, "{}");
  Env* env = Env::Default();
  auto closed = env->IsOpenForWriting(path);
  ASSERT_TRUE(closed.ok()) << closed.status().ToString();
  EXPECT_FALSE(*closed);
  UniqueFd w(::open(path.c_str(), O_WRONLY | O_APPEND));
  ASSERT_TRUE(w.valid());
  auto open = env->IsOpenForWriting(path);
  ASSERT_TRUE(open.ok());
  EXPECT_TRUE(*open);
}

// Regression: the test takes a read lease for a moment; a producer opening the file for
// writing in that moment breaks it, and the kernel sends SIGIO, which ended the daemon (a
// producer rewriting its file in place killed it within seconds). Here the moment is made
// long: a lease is held while a child opens the file for writing.
TEST(PosixEnvTest, ALeaseBrokenByAWriterDoesNotEndTheProcess) {
  testing::TempDir dir;
  std::string path = dir.Sub("b.json");
  testing::WriteAll(path, "{}");
  ASSERT_TRUE(Env::Default()->IsOpenForWriting(path).ok());
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK));
  ASSERT_TRUE(fd.valid());
  ASSERT_EQ(::fcntl(fd.get(), F_SETLEASE, F_RDLCK), 0);
  pid_t child = ::fork();
  if (child == 0) {
    int w = ::open(path.c_str(), O_WRONLY);  // blocks until the lease is given up
    ::_exit(w >= 0 ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the break is under way
  ::fcntl(fd.get(), F_SETLEASE, F_UNLCK);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // any signal has arrived
}

// The same as a producer does it: open, write, close, again and again, while the file is
// tested over and over.
TEST(PosixEnvTest, TestingAFileRewrittenInPlaceOverAndOverIsSurvived) {
  testing::TempDir dir;
  std::string path = dir.Sub("c.json");
  testing::WriteAll(path, "{}");
  pid_t child = ::fork();
  if (child == 0) {
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
      int w = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      if (w < 0) ::_exit(1);
      (void)!::write(w, "{}", 2);
      ::close(w);
    }
    ::_exit(0);
  }
  int tests = 0;
  while (::waitpid(child, nullptr, WNOHANG) == 0) {
    auto r = Env::Default()->IsOpenForWriting(path);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    tests++;
  }
  EXPECT_GT(tests, 100);
}

}  // namespace
}  // namespace sluice
