// Helpers every handler uses.
#include "handlers/handler.h"

namespace sluice {

std::string FileErrorCode(const Status& st) {
  if (st.code() == Code::kInvalidArgument) return "unreadable_file";
  if (st.IsNotFound()) return "file_vanished";
  return "read_error";
}

Status ReadJobInput(const HandlerContext& ctx, std::string* text, HandlerOutput* out) {
  if (ctx.payload != nullptr) {
    *text = *ctx.payload;
    return Status::Ok();
  }
  Status st = ctx.env->ReadFile(ctx.path, ctx.max_file_bytes, text, nullptr);
  if (!st.ok()) out->error_code = FileErrorCode(st);
  return st;
}

}  // namespace sluice
