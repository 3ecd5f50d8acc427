"""`lmeec build trt` (TensorRT plans) and `lmeec build onnx-fp16` (the FP16-policy ONNX variant)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    build = sub.add_parser("build", help="build deployment artifacts from an exported ONNX folder")
    targets = build.add_subparsers(dest="target", required=True, metavar="TARGET")

    trt = targets.add_parser("trt", help="one TensorRT plan per graph (TensorRT 10 or 11 and a GPU)")
    trt.add_argument("--onnx", required=True, help="folder written by `lmeec export onnx`")
    trt.add_argument("--out", required=True, help="plan folder to create")
    trt.add_argument("--fp16", action="store_true", help="FP16 under the precision policy (else FP32)")
    trt.add_argument(
        "--mode",
        choices=["typed", "layers"],
        default="typed",
        help="FP16 policy via a strongly typed FP16-policy ONNX (default) or per-layer precisions (TensorRT 10 only)",
    )
    trt.add_argument("--timing-cache", metavar="FILE", help="timing cache to reuse and update")
    trt.add_argument("--workspace", type=int, metavar="MB", help="builder workspace limit in MiB")
    trt.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    trt.set_defaults(func=cmd_trt)

    f16 = targets.add_parser("onnx-fp16", help="FP16-policy ONNX graphs (for ONNX Runtime or inspection)")
    f16.add_argument("--onnx", required=True, help="folder written by `lmeec export onnx`")
    f16.add_argument("--out", required=True, help="folder to create")
    f16.add_argument("--force", action="store_true", help="replace a previous lmeec output folder")
    f16.set_defaults(func=cmd_onnx_fp16)


def cmd_trt(args: argparse.Namespace) -> int:
    from lmeec.export.trt import build_trt, import_tensorrt
    from lmeec.files import check_output

    import_tensorrt()  # fail first, in one line, where TensorRT is absent
    check_output(args.out, force=args.force, inputs=[args.onnx, args.timing_cache])
    m = build_trt(
        args.onnx,
        args.out,
        fp16=args.fp16,
        mode=args.mode,
        timing_cache=args.timing_cache,
        workspace_mb=args.workspace,
        overwrite=args.force,
    )
    t = m.tensorrt
    print(
        f"built {len(m.graphs)} plans ({t['precision']}, {t['mode']}) with TensorRT {t['version']} "
        f"for {t['gpu']} (sm {t['compute_capability']}) in {args.out}"
    )
    return 0


def cmd_onnx_fp16(args: argparse.Namespace) -> int:
    from lmeec.export.fp16_onnx import write_fp16_folder
    from lmeec.files import check_output

    check_output(args.out, force=args.force, inputs=[args.onnx])
    m = write_fp16_folder(args.onnx, args.out, overwrite=args.force)
    print(
        f"wrote {len(m.graphs)} FP16-policy graphs (policy v{m.graphs and next(iter(m.graphs.values())).extra.get('policy_version')}) to {args.out}"
    )
    return 0
