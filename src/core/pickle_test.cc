// JsonToPickle against pickles written out by hand from Python's opcode table.
#include "core/pickle.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(PickleTest, EveryKindOfValue) {
  auto p = JsonToPickle(R"({"a":[1,2.5,null,true,false,"\u00e9"],"b":{},"c":[],"d":-3000000000})");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  std::string want(
      "\x80\x02}(X\x01\x00\x00\x00"
      "a](J\x01\x00\x00\x00G@\x04\x00\x00\x00\x00\x00\x00"
      "N\x88\x89X\x02\x00\x00\x00\xc3\xa9"
      "eX\x01\x00\x00\x00"
      "b}X\x01\x00\x00\x00"
      "c]X\x01\x00\x00\x00"
      "d\x8a\x08\x00\xa2\x2f\x4d\xff\xff\xff\xff"
      "u.",
      69);
  EXPECT_EQ(*p, want);
  EXPECT_EQ(*JsonToPickle("\"\""), std::string("\x80\x02X\x00\x00\x00\x00.", 8));
  EXPECT_FALSE(JsonToPickle("{").ok());
}

}  // namespace
}  // namespace sluice
