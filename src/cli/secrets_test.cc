// Secrets leave the process's argv once parsed: flag values and passwords inside URLs.
#include "cli/secrets.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/test_util.h"

namespace sluice::cli {
namespace {

std::string Scrubbed(std::string url) {
  ScrubUrlPassword(url.data());
  return url;
}

// Kubernetes mounts a secret as a symlink into a "..data" folder: it is read through it. A
// FIFO or a device is refused at once (it would block, or never end).
TEST(SecretsTest, ASecretFileIsReadThroughALinkButNeverFromAFifoOrADevice) {
  testing::TempDir dir;
  std::filesystem::create_directory(dir.Sub("..data"));
  testing::WriteAll(dir.Sub("..data/token"), "s3cret\n");
  ::chmod(dir.Sub("..data/token").c_str(), 0600);
  ASSERT_EQ(::symlink("..data/token", dir.Sub("token").c_str()), 0);
  auto token = ReadSecretFile("--api-token-file", dir.Sub("token"));
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(*token, "s3cret");
  ASSERT_EQ(::mkfifo(dir.Sub("fifo").c_str(), 0600), 0);
  for (const std::string& path : {dir.Sub("fifo"), std::string("/dev/zero")}) {
    auto bad = ReadSecretFile("--api-token-file", path);
    ASSERT_FALSE(bad.ok()) << path;
    EXPECT_NE(bad.status().message().find(path + " is not a regular file"), std::string::npos)
        << bad.status().message();
  }
}

TEST(SecretsTest, UrlPasswordsAreOverwrittenInPlace) {
  EXPECT_EQ(Scrubbed("amqp://pulse:s3cret@host:5671/vhost"), "amqp://pulse:xxxxxx@host:5671/vhost");
  EXPECT_EQ(Scrubbed("amqp://u:p@ss@host/"), "amqp://u:xxxx@host/");  // the last '@' ends it
  EXPECT_EQ(Scrubbed("https://u:@h/x"), "https://u:@h/x");
  EXPECT_EQ(Scrubbed("amqp://user@host/v"), "amqp://user@host/v");
  EXPECT_EQ(Scrubbed("amqp://host/a:b@c"), "amqp://host/a:b@c");  // '@' after the authority
  EXPECT_EQ(Scrubbed("not a url"), "not a url");
  EXPECT_EQ(Scrubbed(""), "");
  EXPECT_EQ(Scrubbed("host=h password=s3cret dbname=d"), "host=h password=xxxxxx dbname=d");
  EXPECT_EQ(Scrubbed("host=h password = 'a b' user=u"), "host=h password = 'xxx' user=u");
  EXPECT_EQ(Scrubbed("postgresql://u@h/db?password=pw&sslmode=x"),
            "postgresql://u@h/db?password=xx&sslmode=x");
  EXPECT_EQ(Scrubbed("host=h mypassword=keep"), "host=h mypassword=keep");
}

TEST(SecretsTest, FlagValuesAreOverwritten) {
  std::vector<std::string> args = {"sluice",
                                   "--publish-token",
                                   "tok",
                                   "--api-token=abc",
                                   "--publish-url",
                                   "amqp://u:pw@h/",
                                   "--publish-url=http://a:b@c/",
                                   "--name",
                                   "keep"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ScrubSecretArgs(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(args[2], "xxx");
  EXPECT_EQ(args[3], "--api-token=xxx");
  EXPECT_EQ(args[5], "amqp://u:xx@h/");
  EXPECT_EQ(args[6], "--publish-url=http://a:x@c/");
  EXPECT_EQ(args[8], "keep");
}

}  // namespace
}  // namespace sluice::cli
