"""`python -m satx.predict --model=EXPORT --input=...|--bbox=W,S,E,N --zoom=18 --output=OUT`."""

from __future__ import annotations

from satx.cli import command_line, entry_point, load_tensorflow
from satx.cli.flags import config_from_flags, define_flags
from satx.config import PredictConfig

define_flags(PredictConfig)


def main(argv: list[str]) -> int:
    """Predict, then print where the results are and the throughput."""
    load_tensorflow()
    from satx.io import secrets
    from satx.predict.run import dry_run, predict

    del argv
    config = config_from_flags(PredictConfig)
    if config.dry_run:
        d = dry_run(config)
        inputs = config.inputs
        zoom = f" at zoom {inputs.zoom}" if inputs.zoom else ""
        where = inputs.where or f"where {d.input.get('tiles')} has imagery"
        print(f"{d.tiles:,} tiles{zoom}: {where}")
        if "mask" in d.input:
            area = d.input["area_tiles"]
            print(
                f"the mask {d.input['mask']} keeps {d.tiles:,} of the area's {area:,} tiles "
                f"({100 * d.tiles / max(area, 1):.1f} %), those within "
                f"{d.input['mask_buffer_m']:g} m of a built-up feature"
            )
        if inputs.source.tiles:
            shown = d.input.get("tiles") or secrets.redact_url(inputs.source.tiles)
            print(f"tile source: {shown}")
        print(
            f"model {d.model} ({d.runtime}): {d.model_tiles_per_s} tiles/s here on "
            f"{d.devices} device(s), "
            f"model alone -> {d.projected_human} for these tiles, before reading and decoding "
            "(satx.bench predict measures those)"
        )
        return 0
    command = command_line("satx.predict")
    if config.engine == "beam":
        from satx.predict.beam import predict_beam

        s = predict_beam(config, command=command)
    else:
        s = predict(config, command=command)
    print(
        f"{s.tiles} tiles: {s.scored} scored, {s.errors} errors ({s.missing} missing), "
        f"{s.kept} written (score >= {config.outputs.min_score})"
    )
    r = s.this_run
    print(f"this run: {r.tiles} tiles in {r.seconds} s = {r.tiles_per_s} tiles/s ({s.runtime})")
    p = s.projection
    if p.human:
        print(f"projected for {p.tiles:,} tiles on {p.devices} device(s): {p.human}")
    for kind, url in s.files.items():
        print(f"{kind}: {url}")
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
