// Helpers every handler uses.
#include "handlers/handler.h"

namespace sluice {

Status ReadJobInput(const HandlerContext& ctx, std::string* text, HandlerOutput* out) {
  if (ctx.payload != nullptr) {
    *text = *ctx.payload;
    return Status::Ok();
  }
  Status st = ctx.env->ReadFile(ctx.path, ctx.max_file_bytes, text, nullptr);
  if (!st.ok()) out->error_code = "unreadable_file";
  return st;
}

}  // namespace sluice
