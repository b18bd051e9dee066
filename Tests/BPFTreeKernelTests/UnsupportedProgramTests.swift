import Foundation
import Testing

/// Program kinds bpftree cannot declare yet (struct_ops, freplace): a `program:` entry of one is refused
/// before anything changes, with the kernel's or libbpf's answer and what is missing, not a bare errno.
@Suite(.enabled(if: KernelSupport.runnable, KernelSupport.skipComment), .serialized)
struct UnsupportedProgramTests {
    static let structOps = """
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        #include <bpf/bpf_tracing.h>
        char LICENSE[] SEC("license") = "GPL";
        struct sock;
        struct tcp_congestion_ops {
            unsigned int (*ssthresh)(struct sock *sk);
            void (*cong_avoid)(struct sock *sk, unsigned int ack, unsigned int acked);
            unsigned int (*undo_cwnd)(struct sock *sk);
            char name[16];
        } __attribute__((preserve_access_index));
        SEC("struct_ops/cc_ssthresh") unsigned int BPF_PROG(cc_ssthresh, struct sock *sk) { return 10; }
        SEC("struct_ops/cc_cong_avoid") void BPF_PROG(cc_cong_avoid, struct sock *sk, unsigned int ack, unsigned int acked) {}
        SEC("struct_ops/cc_undo_cwnd") unsigned int BPF_PROG(cc_undo_cwnd, struct sock *sk) { return 10; }
        SEC(".struct_ops.link") struct tcp_congestion_ops bpftree_cc = {
            .ssthresh = (void *)cc_ssthresh, .cong_avoid = (void *)cc_cong_avoid, .undo_cwnd = (void *)cc_undo_cwnd, .name = "bpftree_cc",
        };

        """

    static let freplace = """
        #include <linux/bpf.h>
        #include <bpf/bpf_helpers.h>
        char LICENSE[] SEC("license") = "GPL";
        SEC("freplace/slot") int replacement(struct xdp_md *ctx) { return XDP_DROP; }

        """

    @Test(arguments: [
        ("cc.bpf.c", structOps, "cc_ssthresh", "a struct_ops program is loaded with the struct_ops map that uses it, which bpftree cannot declare yet"),
        ("ext.bpf.c", freplace, "replacement", "an freplace (extension) program is loaded against a target program, which bpftree cannot declare yet"),
    ])
    func aProgramOfAKindBpftreeCannotDeclareIsRefusedSayingWhy(file: String, source: String, program: String, message: String) throws {
        let fs = try ScratchBPFFS()
        let before = try fs.snapshot()
        let manifest = """
            apiVersion: bpftree/v1
            kind: Tree
            metadata: {name: unsupported}
            spec:
              root: x
              entries:
                p:
                  program: {object: \(file.replacingOccurrences(of: ".c", with: ".o")), name: \(program)}

            """
        let files = try ManifestDirectory(["m.yaml": manifest, file: source, "policy.yaml": try String(contentsOfFile: repositoryRoot + "/policies/tracing.yaml", encoding: .utf8)])
        try buildBPF([files.path + "/" + file], into: files.path)
        let result = try bpftree(["apply", "-f", files.path + "/m.yaml", "--policy", files.path + "/policy.yaml", "--anchor", fs.path])
        #expect(result.status == 1, "\(result.output)")
        #expect(result.output.contains("m.yaml:8:") && result.output.contains("spec.entries.p.program.name"), "\(result.output)")
        #expect(result.output.contains(message), "\(result.output)")
        #expect(try fs.snapshot() == before)
    }
}
