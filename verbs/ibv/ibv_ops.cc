// verbs/ibv/ibv_ops.cc — the real libibverbs behind IbvOps, and the sysfs lookup from a network
// interface to its RDMA device and port (what `rdma link show` prints).
#include "verbs/ibv/ibv_ops.h"

#include <dirent.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace xmit::ibv {
namespace {

// Single-line sysfs attribute without its newline; false when absent.
bool read_attr(const std::string& path, std::string* out) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return false;
  char buf[256];
  bool ok = fgets(buf, sizeof buf, f) != nullptr;
  fclose(f);
  if (!ok) return false;
  size_t n = strcspn(buf, "\n");
  out->assign(buf, n);
  return true;
}

// Entries of a directory other than "." and "..", in readdir order.
bool list_dir(const std::string& path, std::string* first, int* count) {
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return false;
  *count = 0;
  while (dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    if ((*count)++ == 0) *first = e->d_name;
  }
  closedir(d);
  return true;
}

// Devices that are not the interface's own PCI function (soft-RoCE rxe, siw) list the interface
// only under their ports: ROOT/class/infiniband/DEV/ports/N/gid_attrs/ndevs/I.
bool scan_gid_ndevs(const std::string& root, const std::string& ifname, std::string* ibdev, uint8_t* port) {
  const std::string cls = root + "/class/infiniband";
  DIR* d = opendir(cls.c_str());
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    for (int p = 1; p < 256 && !found; ++p) {
      const std::string ndevs = cls + "/" + e->d_name + "/ports/" + std::to_string(p) + "/gid_attrs/ndevs/";
      std::string nd;
      for (int i = 0; i < 16 && !found; ++i) {
        if (!read_attr(ndevs + std::to_string(i), &nd)) continue;
        if (nd == ifname) {
          *ibdev = e->d_name;
          *port = uint8_t(p);
          found = true;
        }
      }
      std::string probe;
      int count = 0;
      if (!list_dir(cls + "/" + e->d_name + "/ports/" + std::to_string(p), &probe, &count)) break;
    }
    if (found) break;
  }
  closedir(d);
  return found;
}

int real_netdev_to_ibdev(const char* ifname, std::string* ibdev, uint8_t* port, std::string* why) {
  return sysfs_netdev_to_ibdev("/sys", ifname, ibdev, port, why);
}

// Each entry calls the libibverbs function of the same name; the inline ones (verbs.h) go
// through the provider's ops, as they would in any rdma-core program.
const IbvOps kReal = {
    .name = "libibverbs",
    .netdev_to_ibdev = real_netdev_to_ibdev,
    .get_device_list = [](int* n) { return ibv_get_device_list(n); },
    .free_device_list = [](ibv_device** l) { ibv_free_device_list(l); },
    .get_device_name = [](ibv_device* d) { return ibv_get_device_name(d); },
    .open_device = [](ibv_device* d) { return ibv_open_device(d); },
    .close_device = [](ibv_context* c) { return ibv_close_device(c); },
    .query_device_ex = [](ibv_context* c, const ibv_query_device_ex_input* in, ibv_device_attr_ex* a) {
      return ibv_query_device_ex(c, in, a);
    },
    .query_port = [](ibv_context* c, uint8_t p, ibv_port_attr* a) { return ibv_query_port(c, p, a); },
    .alloc_pd = [](ibv_context* c) { return ibv_alloc_pd(c); },
    .dealloc_pd = [](ibv_pd* pd) { return ibv_dealloc_pd(pd); },
    .reg_mr = [](ibv_pd* pd, void* addr, size_t len, int access) { return ibv_reg_mr(pd, addr, len, access); },
    .dereg_mr = [](ibv_mr* mr) { return ibv_dereg_mr(mr); },
    .create_cq = [](ibv_context* c, int cqe, void* cq_ctx, ibv_comp_channel* ch, int vec) {
      return ibv_create_cq(c, cqe, cq_ctx, ch, vec);
    },
    .destroy_cq = [](ibv_cq* cq) { return ibv_destroy_cq(cq); },
    .create_comp_channel = [](ibv_context* c) { return ibv_create_comp_channel(c); },
    .destroy_comp_channel = [](ibv_comp_channel* ch) { return ibv_destroy_comp_channel(ch); },
    .req_notify_cq = [](ibv_cq* cq, int solicited) { return ibv_req_notify_cq(cq, solicited); },
    .get_cq_event = [](ibv_comp_channel* ch, ibv_cq** cq, void** ctx) { return ibv_get_cq_event(ch, cq, ctx); },
    .ack_cq_events = [](ibv_cq* cq, unsigned int n) { ibv_ack_cq_events(cq, n); },
    .create_qp = [](ibv_pd* pd, ibv_qp_init_attr* a) { return ibv_create_qp(pd, a); },
    .create_qp_ex = [](ibv_context* c, ibv_qp_init_attr_ex* a) { return ibv_create_qp_ex(c, a); },
    .modify_qp = [](ibv_qp* qp, ibv_qp_attr* a, int mask) { return ibv_modify_qp(qp, a, mask); },
    .destroy_qp = [](ibv_qp* qp) { return ibv_destroy_qp(qp); },
    .post_send = [](ibv_qp* qp, ibv_send_wr* wr, ibv_send_wr** bad) { return ibv_post_send(qp, wr, bad); },
    .post_recv = [](ibv_qp* qp, ibv_recv_wr* wr, ibv_recv_wr** bad) { return ibv_post_recv(qp, wr, bad); },
    .poll_cq = [](ibv_cq* cq, int n, ibv_wc* wc) { return ibv_poll_cq(cq, n, wc); },
    .create_flow = [](ibv_qp* qp, ibv_flow_attr* f) { return ibv_create_flow(qp, f); },
    .destroy_flow = [](ibv_flow* f) { return ibv_destroy_flow(f); },
};

}  // namespace

const IbvOps& ibv_real_ops() { return kReal; }

int sysfs_netdev_to_ibdev(const std::string& root, const std::string& ifname, std::string* ibdev,
                          uint8_t* port, std::string* why) {
  const std::string net = root + "/class/net/" + ifname;
  const std::string ibdir = net + "/device/infiniband";
  int count = 0;
  std::string dev;
  if (!list_dir(ibdir, &dev, &count) || count == 0) {
    if (scan_gid_ndevs(root, ifname, ibdev, port)) return 0;
    if (why != nullptr) {
      std::string probe;
      *why = read_attr(net + "/ifindex", &probe)
                 ? ifname + " has no RDMA device (" + ibdir + " does not exist)"
                 : "no network interface " + ifname + " (" + net + ")";
    }
    return -ENODEV;
  }
  *ibdev = dev;
  // The port whose first netdev is this interface (RoCE/raw Ethernet ports list it here).
  const std::string ports = root + "/class/infiniband/" + dev + "/ports";
  for (int p = 1; p < 256; ++p) {
    std::string nd;
    if (!read_attr(ports + "/" + std::to_string(p) + "/gid_attrs/ndevs/0", &nd)) {
      std::string probe;
      if (!list_dir(ports + "/" + std::to_string(p), &probe, &count)) break;  // no such port
      continue;
    }
    if (nd == ifname) {
      *port = uint8_t(p);
      return 0;
    }
  }
  std::string dev_port;
  long dp = 0;
  if (read_attr(net + "/dev_port", &dev_port)) dp = strtol(dev_port.c_str(), nullptr, 0);
  *port = uint8_t(dp + 1);
  return 0;
}

}  // namespace xmit::ibv
