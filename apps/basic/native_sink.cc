// basic.NativeSink: a sink written in C++, the model for native apps (see runtime/native_app.h).
#include "runtime/link.h"
#include "runtime/native_app.h"

namespace snabb::apps::basic {
namespace {

class NativeSink : public runtime::App {
 public:
  bool has_push() const override { return true; }
  void set_links(std::vector<runtime::Link*> inputs, std::vector<runtime::Link*> outputs) override {
    inputs_ = std::move(inputs);
  }
  void push() override {
    for (runtime::Link* l : inputs_) {
      while (!runtime::link_empty(l)) runtime::packet_free(runtime::link_receive(l));
    }
  }

 private:
  std::vector<runtime::Link*> inputs_;
};

const runtime::NativeAppRegistrar registrar("basic.NativeSink",
                                            [] { return std::make_unique<NativeSink>(); });

}  // namespace
}  // namespace snabb::apps::basic
