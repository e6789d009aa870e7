// tests/preload/config_test.cc — XMIT_* parsing: accepted values, and one error line per bad value.
#include "preload/config.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace xmit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Config parse(std::map<std::string, std::string> env) {
  return parse_config([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(Config, DefaultsWhenNothingIsSet) {
  Config c = parse({});
  EXPECT_EQ(c.iface, "");
  EXPECT_EQ(c.backend, Backend::kAuto);
  EXPECT_EQ(c.verbs_device, VerbsDevice::kHw);
  EXPECT_TRUE(c.udp);
  EXPECT_TRUE(c.tcp);
  EXPECT_TRUE(c.tcp_autocork);
  EXPECT_EQ(c.log_level, LogLevel::kNotice);
  EXPECT_EQ(c.log_file, "");
  EXPECT_EQ(c.pcap_file, "");
  EXPECT_EQ(c.tx_batch, 1u);
  EXPECT_THAT(c.errors, IsEmpty());
}

TEST(Config, AcceptsEveryDocumentedValue) {
  Config c = parse({{"XMIT_IFACE", "veth0"}, {"XMIT_BACKEND", "afxdp"}, {"XMIT_UDP", "off"},
                    {"XMIT_TCP", "on"}, {"XMIT_LOG", "debug:/tmp/x-%p.log"}, {"XMIT_PCAP", "/tmp/a.pcap"}});
  EXPECT_THAT(c.errors, IsEmpty());
  EXPECT_EQ(c.iface, "veth0");
  EXPECT_EQ(c.backend, Backend::kAfXdp);
  EXPECT_FALSE(c.udp);
  EXPECT_TRUE(c.tcp);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.log_file, "/tmp/x-%p.log");
  EXPECT_EQ(c.pcap_file, "/tmp/a.pcap");
  EXPECT_EQ(parse({{"XMIT_BACKEND", "verbs"}}).backend, Backend::kVerbs);
  EXPECT_EQ(parse({{"XMIT_BACKEND", "auto"}}).backend, Backend::kAuto);
  EXPECT_EQ(parse({{"XMIT_VERBS_DEVICE", "software"}}).verbs_device, VerbsDevice::kSoftware);
  EXPECT_EQ(parse({{"XMIT_VERBS_DEVICE", "hw"}}).verbs_device, VerbsDevice::kHw);
  EXPECT_TRUE(parse({}).verbs_sw_offloads);
  EXPECT_FALSE(parse({{"XMIT_VERBS_SW_OFFLOADS", "off"}}).verbs_sw_offloads);
  EXPECT_TRUE(parse({{"XMIT_VERBS_SW_OFFLOADS", "on"}}).verbs_sw_offloads);
  EXPECT_FALSE(parse({}).verbs_rx_inject_raw);
  EXPECT_TRUE(parse({{"XMIT_VERBS_RX_INJECT", "raw"}}).verbs_rx_inject_raw);
  EXPECT_FALSE(parse({{"XMIT_VERBS_RX_INJECT", "tcx"}}).verbs_rx_inject_raw);
  EXPECT_EQ(parse({{"XMIT_VERBS_RX_INJECT", "loopback"}}).errors.size(), 1u);
  EXPECT_EQ(parse({{"XMIT_LOG", "error"}}).log_level, LogLevel::kError);
  EXPECT_FALSE(parse({{"XMIT_TCP", "0"}}).tcp);
  EXPECT_FALSE(parse({{"XMIT_TCP_AUTOCORK", "off"}}).tcp_autocork);
  EXPECT_TRUE(parse({{"XMIT_TCP_AUTOCORK", "on"}}).tcp_autocork);
  EXPECT_TRUE(parse({{"XMIT_UDP", "1"}}).udp);
  EXPECT_EQ(parse({{"XMIT_TX_BATCH", "32"}}).tx_batch, 32u);
  EXPECT_EQ(parse({{"XMIT_TX_BATCH", "1"}}).tx_batch, 1u);
  EXPECT_EQ(parse({{"XMIT_TX_BATCH", "1024"}}).tx_batch, 1024u);
  EXPECT_EQ(parse({}).verbs_mr_entries, 64u);
  EXPECT_EQ(parse({{"XMIT_VERBS_MR_ENTRIES", "0"}}).verbs_mr_entries, 0u);
  EXPECT_EQ(parse({{"XMIT_VERBS_MR_ENTRIES", "4096"}}).verbs_mr_entries, 4096u);
  EXPECT_EQ(parse({}).workers, 0u);
  EXPECT_EQ(parse({{"XMIT_WORKERS", "2"}}).workers, 2u);
  EXPECT_EQ(parse({{"XMIT_WORKERS", "64"}}).workers, 64u);
  EXPECT_EQ(parse({}).busy_poll, -1);  // unset: net.core.busy_read / busy_poll decide
  EXPECT_EQ(parse({{"XMIT_BUSY_POLL", "0"}}).busy_poll, 0);
  EXPECT_EQ(parse({{"XMIT_BUSY_POLL", "50"}}).busy_poll, 50);
  EXPECT_EQ(parse({{"XMIT_BUSY_POLL", "1000000"}}).busy_poll, 1000000);
}

TEST(Config, EmptyIfaceMeansUnset) {
  Config c = parse({{"XMIT_IFACE", ""}});
  EXPECT_EQ(c.iface, "");
  EXPECT_THAT(c.errors, IsEmpty());
}

struct BadCase {
  const char* name;
  const char* var;
  const char* value;
  const char* accepted;  // must appear in the error line
};

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, OneLineNamingVariableAndAcceptedValues) {
  const BadCase& b = GetParam();
  Config c = parse({{b.var, b.value}});
  ASSERT_EQ(c.errors.size(), 1u);
  EXPECT_THAT(c.errors[0], HasSubstr(std::string(b.var) + "=" + b.value));
  EXPECT_THAT(c.errors[0], HasSubstr(b.accepted));
  EXPECT_EQ(c.errors[0].find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigBad,
    ::testing::Values(
        BadCase{"IfaceTooLong", "XMIT_IFACE", "abcdefghijklmnop", "1 to 15 bytes"},
        BadCase{"IfaceSlash", "XMIT_IFACE", "a/b", "without '/'"},
        BadCase{"IfaceDot", "XMIT_IFACE", "..", "interface name"},
        BadCase{"Backend", "XMIT_BACKEND", "dpdk", "afxdp, verbs, auto"},
        BadCase{"BackendCase", "XMIT_BACKEND", "AFXDP", "afxdp, verbs, auto"},
        BadCase{"VerbsDevice", "XMIT_VERBS_DEVICE", "sw", "hw, software"},
        BadCase{"VerbsDeviceEmpty", "XMIT_VERBS_DEVICE", "", "hw, software"},
        BadCase{"VerbsSwOffloads", "XMIT_VERBS_SW_OFFLOADS", "tso", "on, off"},
        BadCase{"Udp", "XMIT_UDP", "maybe", "on, off"},
        BadCase{"Tcp", "XMIT_TCP", "yes", "on, off"},
        BadCase{"TcpAutocork", "XMIT_TCP_AUTOCORK", "sometimes", "on, off"},
        BadCase{"LogLevel", "XMIT_LOG", "loud", "error, warn, notice, info, debug"},
        BadCase{"LogEmptyFile", "XMIT_LOG", "debug:", "optionally :FILE"},
        BadCase{"Pcap", "XMIT_PCAP", "", "a file path"},
        BadCase{"TxBatchZero", "XMIT_TX_BATCH", "0", "from 1 to 1024"},
        BadCase{"TxBatchBig", "XMIT_TX_BATCH", "1025", "from 1 to 1024"},
        BadCase{"TxBatchSign", "XMIT_TX_BATCH", "-4", "from 1 to 1024"},
        BadCase{"TxBatchText", "XMIT_TX_BATCH", "32x", "from 1 to 1024"},
        BadCase{"TxBatchEmpty", "XMIT_TX_BATCH", "", "from 1 to 1024"},
        BadCase{"VerbsMrEntriesBig", "XMIT_VERBS_MR_ENTRIES", "4097", "from 0 to 4096"},
        BadCase{"VerbsMrEntriesSign", "XMIT_VERBS_MR_ENTRIES", "-1", "from 0 to 4096"},
        BadCase{"WorkersBig", "XMIT_WORKERS", "65", "from 0 to 64"},
        BadCase{"WorkersText", "XMIT_WORKERS", "two", "from 0 to 64"},
        BadCase{"BusyPollBig", "XMIT_BUSY_POLL", "1000001", "from 0 to 1000000"},
        BadCase{"BusyPollSign", "XMIT_BUSY_POLL", "-1", "from 0 to 1000000"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Config, SeveralBadValuesGiveSeveralLines) {
  Config c = parse({{"XMIT_UDP", "x"}, {"XMIT_TCP", "y"}});
  EXPECT_THAT(c.errors, ElementsAre(HasSubstr("XMIT_UDP=x"), HasSubstr("XMIT_TCP=y")));
}

}  // namespace
}  // namespace xmit
