# Scoring image: one saved model baked in, served by `mlship serve` on port 8888.
#
#   docker build --build-arg MODEL_PATH=models/oj-purchase -t oj-scorer .
#   docker run --rm -p 8888:8888 oj-scorer
#
# MODEL_PATH is a saved model dir inside the build context (`mlship train` writes one,
# `mlship image build` exports one from the registry and passes the labels below).
# The same image answers Cloud Run/KServe (PORT), Vertex AI (AIP_*) and SageMaker (`serve`).
#
# RUNTIME=sklearn (default) scores with the fitted scikit-learn pipeline and works for every
# model. RUNTIME=onnx installs onnxruntime instead of scikit-learn/SciPy/pandas and needs a
# model whose ONNX twin passed its parity check at training time (mlship image build picks
# it automatically); the build fails if the model cannot be served that way.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS builder
ARG MODEL_PATH
ARG RUNTIME=sklearn
RUN test -n "${MODEL_PATH}" || { echo "error: build arg MODEL_PATH is required, e.g. --build-arg MODEL_PATH=models/oj-purchase" >&2; exit 1; }
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# binutils (strip) for this stage only, the runtime stage gets no build tools; libgomp1 so the
# model check and warm-up below can load a LightGBM model (see the runtime stage).
RUN packages="$(command -v strip >/dev/null || echo binutils)"; \
    if [ "${RUNTIME}" = sklearn ] && ! ldconfig -p | grep -q libgomp.so.1; then packages="$packages libgomp1"; fi; \
    if [ -n "$packages" ]; then \
      apt-get update && apt-get install -y --no-install-recommends $packages && apt-get clean && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python -m venv /opt/venv
# Serving dependencies only, pinned with hashes from uv.lock (requirements/serve-*.txt).
# No bytecode yet: the warm-up below compiles only what serving imports.
COPY requirements/serve-sklearn.txt requirements/serve-onnx.txt /tmp/
RUN test -f "/tmp/serve-${RUNTIME}.txt" || { echo "error: RUNTIME must be sklearn or onnx, got '${RUNTIME}'" >&2; exit 1; } \
 && /opt/venv/bin/pip install --no-compile --require-hashes --no-deps -r "/tmp/serve-${RUNTIME}.txt"
COPY pyproject.toml README.md /src/
COPY src /src/src
ENV SITE=/opt/venv/lib/python3.11/site-packages
RUN /opt/venv/bin/pip install --no-compile --no-deps /src \
 && /opt/venv/bin/python -m pip uninstall -q -y pip setuptools \
 && find "$SITE" -depth -type d -name tests -exec rm -rf {} + \
 # Headers and stubs are for compiling against a package, never read when serving.
 && find "$SITE" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.h' -o -name '*.hpp' \) -delete \
 # Debug symbols (uvloop alone carries 11 MB). Libraries vendored by auditwheel (*.libs/)
 # were rewritten by patchelf and are left as they are.
 && find "$SITE" -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
 && /opt/venv/bin/python -m compileall -q "$SITE/mlship" \
 && if [ "${RUNTIME}" = onnx ]; then \
      # The Python API links its own copy of the runtime; the C-API library and the model
      # conversion/quantization tooling are never loaded when serving (~43 MB).
      ort="$SITE/onnxruntime"; \
      rm -rf "$ort"/capi/libonnxruntime.so* "$ort"/transformers "$ort"/quantization "$ort"/tools "$ort"/datasets; \
    fi
COPY ${MODEL_PATH} /opt/model
# Load the model as the server will: the dir is verified against its manifest (every file's
# size and SHA-256, nothing extra) before anything is unpickled. Our errors are one line.
RUN test -f /opt/model/MLmodel || { echo "error: MODEL_PATH=${MODEL_PATH} is not a saved model dir (no MLmodel file)" >&2; exit 1; } \
 && /opt/venv/bin/python -c "import sys; from mlship.errors import MlshipError; sys.excepthook = lambda kind, exc, tb: print('error: model check failed:', exc, file=sys.stderr) if isinstance(exc, MlshipError) else sys.__excepthook__(kind, exc, tb); from mlship.scoring.predictor import Predictor; p = Predictor.load('/opt/model', runtime='${RUNTIME}'); print('model ok:', p.info.name, 'v' + p.info.version, 'runtime', p.runtime, 'manifest', p.info.manifest_sha256 or 'none (format 0)')"
# Bytecode for exactly what a start imports: one real `mlship serve` on loopback answers
# /ready and the other routes, then stops (mlship.deploy.warmup). The root filesystem is
# read-only at run time, so what is not compiled here is compiled at every start.
RUN env -u PYTHONDONTWRITEBYTECODE MLSHIP_RUNTIME="${RUNTIME}" OMP_NUM_THREADS=1 \
      /opt/venv/bin/python -m mlship.deploy.warmup /opt/model

FROM ${BASE_IMAGE}
ARG MODEL_NAME=unknown
ARG MODEL_VERSION=unknown
ARG MODEL_RUN_ID=unknown
ARG MLSHIP_VERSION=unknown
ARG RUNTIME=sklearn
LABEL org.opencontainers.image.title="mlship scorer: ${MODEL_NAME}" \
      org.opencontainers.image.description="Scoring service for ${MODEL_NAME} v${MODEL_VERSION}" \
      org.opencontainers.image.source="https://github.com/mlship/mlship" \
      ai.mlship.model.name="${MODEL_NAME}" \
      ai.mlship.model.version="${MODEL_VERSION}" \
      ai.mlship.model.run_id="${MODEL_RUN_ID}" \
      ai.mlship.version="${MLSHIP_VERSION}" \
      ai.mlship.runtime="${RUNTIME}"
# LightGBM links the system OpenMP runtime (libgomp.so.1), which slim images lack; scikit-learn's
# wheel carries its own and onnxruntime uses none, so the ONNX image installs nothing. apt's
# lists and caches go in the same layer (`apt-get clean`: on a base without Debian's
# docker-clean apt config, pkgcache.bin and the .deb files would keep ~75 MB in it).
RUN if [ "${RUNTIME}" = sklearn ] && ! ldconfig -p | grep -q libgomp.so.1; then \
      apt-get update && apt-get install -y --no-install-recommends libgomp1 \
      && apt-get clean && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log; \
    fi \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mlship \
 && rm -f /var/log/lastlog /var/log/faillog
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/model /opt/model
# ORT_DISABLE_TELEMETRY: onnxruntime's Linux wheels report usage to Microsoft unless told not
# to (mlship sets it before its first use of onnxruntime as well).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    ORT_DISABLE_TELEMETRY=1 \
    MLSHIP_RUNTIME=${RUNTIME}
USER 10001
EXPOSE 8888
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-m", "mlship.cli.healthcheck"]
# Outside a container `mlship serve` listens on 127.0.0.1 only; the image listens on every
# interface. SIGTERM (docker stop, Kubernetes, Cloud Run) drains: /ready 503, requests in
# flight finish within MLSHIP_GRACE_SECONDS (20), exit 0. PID 1 is mlship (exec form).
ENTRYPOINT ["mlship", "serve", "--model", "/opt/model", "--host", "0.0.0.0"]
