// Browser sessions: cookie parsing (hostile headers too), expiry and the cap.
#include "api/sessions.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

namespace sluice::api {
namespace {

TEST(CookieValueTest, FindsTheNamedCookieAmongOthersAndNothingElse) {
  EXPECT_EQ(CookieValue("a=1; sluice_session=abc; b=2", "sluice_session"), "abc");
  EXPECT_EQ(CookieValue("sluice_session=abc", "sluice_session"), "abc");
  EXPECT_EQ(CookieValue("xsluice_session=abc", "sluice_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sluice_session_2=abc", "sluice_session"), std::nullopt);
  EXPECT_EQ(CookieValue("", "sluice_session"), std::nullopt);
  EXPECT_EQ(CookieValue(";;;  ;", "sluice_session"), std::nullopt);
  EXPECT_EQ(CookieValue("sluice_session=", "sluice_session"), "");
  std::string huge(100000, ';');
  EXPECT_EQ(CookieValue(huge + "sluice_session=x", "sluice_session"), "x");
}

TEST(SessionsTest, ASessionIsFoundByItsCookieUntilRemoved) {
  Sessions s;
  Sessions::Session a = s.Create();
  Sessions::Session b = s.Create();
  EXPECT_EQ(a.id.size(), 64u);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.csrf, a.id);
  auto found = s.FromCookie("other=1; sluice_session=" + a.id);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->csrf, a.csrf);
  EXPECT_FALSE(s.FromCookie("sluice_session=" + a.id + "0").has_value());
  EXPECT_FALSE(s.FromCookie("sluice_session=").has_value());
  s.Remove(a.id);
  EXPECT_FALSE(s.FromCookie("sluice_session=" + a.id).has_value());
  EXPECT_TRUE(s.FromCookie("sluice_session=" + b.id).has_value());
}

TEST(SessionsTest, AnIdleSessionEnds) {
  Sessions s;
  s.set_idle_limit(std::chrono::seconds(0));
  Sessions::Session a = s.Create();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(s.FromCookie("sluice_session=" + a.id).has_value());
}

TEST(SessionsTest, BeyondTheCapTheLeastRecentlyUsedGoes) {
  Sessions s;
  Sessions::Session first = s.Create();
  Sessions::Session kept = s.Create();
  for (size_t i = 2; i < Sessions::kMax; ++i) s.Create();
  EXPECT_TRUE(s.FromCookie("sluice_session=" + kept.id).has_value());  // used: recent now
  s.Create();
  EXPECT_FALSE(s.FromCookie("sluice_session=" + first.id).has_value());
  EXPECT_TRUE(s.FromCookie("sluice_session=" + kept.id).has_value());
}

}  // namespace
}  // namespace sluice::api
