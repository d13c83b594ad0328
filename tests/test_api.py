"""POST /v1/analyze and the service endpoints through the Flask test client, checked against openapi.yaml."""

from __future__ import annotations

import base64
import io

import pytest

from api.wiring.config import DEFAULT_EMOTION_MODEL
from tests.conftest import FACES, VIDEOS
from tests.samples import animated_gif, png_bomb, reencode

pytestmark = pytest.mark.data

EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def upload(client, data: bytes, headers, **options):
    return client.post("/v1/analyze", data={"file": (io.BytesIO(data), "upload"), **options}, headers=headers)


def assert_problem(response, status: int, code: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.json["code"] == code
    assert response.json["status"] == status


def assert_plausible_face(face):
    assert face["box"]["w"] > 0 and face["box"]["h"] > 0
    assert set(face["emotions"]) == EMOTIONS
    assert sum(face["emotions"].values()) == pytest.approx(1.0, abs=2e-3)
    assert face["dominant_emotion"] == max(face["emotions"], key=face["emotions"].get)


def test_photo_of_two_people(client, auth, assert_contract):
    response = assert_contract(upload(client, (FACES / "couple.jpg").read_bytes(), auth))
    assert response.status_code == 200
    body = response.json
    assert body["media"] == {
        "type": "image",
        "format": "jpeg",
        "width": 2280,
        "height": 1588,
        "duration_ms": None,
        "fps": None,
        "frames_analyzed": 1,
    }
    assert len(body["faces"]) == 2
    for face in body["faces"]:
        assert_plausible_face(face)
        eyes = face["landmarks"]["left_eye"], face["landmarks"]["right_eye"]
        box = face["box"]
        assert all(box["x"] <= x <= box["x"] + box["w"] and box["y"] <= y <= box["y"] + box["h"] for x, y in eyes)
    assert response.headers["X-Request-Id"] == body["request_id"]
    assert body["model"]["emotion"] == DEFAULT_EMOTION_MODEL


def test_broad_smile_reads_as_happy(client, auth, assert_contract):
    # img1.jpg is a broad open-mouthed smile: the one label in the set a human would not dispute.
    response = assert_contract(upload(client, (FACES / "img1.jpg").read_bytes(), auth))
    (face,) = response.json["faces"]
    assert face["dominant_emotion"] == "happy"


def test_base64_json_and_options(client, auth, assert_contract):
    encoded = base64.b64encode(reencode(FACES / "img1.jpg", "PNG", max_side=640)).decode()
    body = {"image_base64": "data:image/png;base64," + encoded, "detector": "opencv", "return_landmarks": False}
    response = assert_contract(client.post("/v1/analyze", json=body, headers=auth))
    assert response.status_code == 200
    (face,) = response.json["faces"]
    assert face["landmarks"] is None
    assert response.json["model"]["detector"] == "opencv"


def test_skip_detector_treats_the_picture_as_one_face(client, auth, assert_contract):
    response = assert_contract(
        upload(client, reencode(FACES / "img1.jpg", "JPEG", max_side=200), auth, detector="skip")
    )
    (face,) = response.json["faces"]
    assert face["box"]["x"] == 0 and face["confidence"] is None


def test_max_faces_keeps_the_largest(client, auth, assert_contract):
    data = (FACES / "selfie-many-people.jpg").read_bytes()
    every = assert_contract(upload(client, data, auth)).json["faces"]
    capped = assert_contract(upload(client, data, auth, max_faces="2")).json["faces"]
    assert len(every) > 2 and len(capped) == 2
    area = lambda f: f["box"]["w"] * f["box"]["h"]  # noqa: E731
    assert sorted(map(area, capped)) == sorted(map(area, every))[-2:]


def test_a_picture_without_a_face_is_not_an_error(client, auth, assert_contract):
    response = assert_contract(
        client.post(
            "/v1/analyze",
            data={"file": (io.BytesIO(reencode(FACES / "img1.jpg", "PNG", max_side=16)), "x")},
            headers=auth,
        )
    )
    assert response.status_code == 200
    assert response.json["faces"] == []


def test_clip_returns_frames_and_tracks(client, auth, assert_contract):
    response = assert_contract(upload(client, (VIDEOS / "single_face.mp4").read_bytes(), auth, fps="10"))
    assert response.status_code == 200
    body = response.json
    assert body["media"]["type"] == "video" and body["media"]["frames_analyzed"] == 24
    assert body["sample_fps"] == 10
    assert len(body["frames"]) == 24
    assert [t["track_id"] for t in body["tracks"]] == [1]
    track = body["tracks"][0]
    assert track["frame_count"] >= 20
    assert all(face.get("track_id") == 1 for frame in body["frames"] for face in frame["faces"])
    # The man starts neutral and ends in a broad smile.
    assert track["timeline"][-1]["dominant_emotion"] == "happy"


def test_animated_gif_is_analysed_as_a_clip(client, auth, assert_contract):
    response = assert_contract(upload(client, animated_gif(FACES / "img1.jpg"), auth))
    assert response.json["media"]["type"] == "video"
    assert len(response.json["tracks"]) == 1


def test_clip_without_faces(client, auth, assert_contract):
    response = assert_contract(upload(client, (VIDEOS / "no_face.mp4").read_bytes(), auth, fps="4"))
    assert response.status_code == 200
    assert response.json["tracks"] == []


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "missing_api_key"),
        ({"Authorization": "Bearer emo_000000000000_nope"}, "invalid_api_key"),
        ({"X-API-Key": "not-a-key"}, "invalid_api_key"),
    ],
)
def test_authentication_is_required(client, headers, code, assert_contract):
    response = assert_contract(upload(client, b"irrelevant", headers))
    assert_problem(response, 401, code)
    assert "Bearer" in response.headers["WWW-Authenticate"]


def test_x_api_key_header_works(client, api_key):
    response = upload(client, reencode(FACES / "img1.jpg", "JPEG", max_side=320), {"X-API-Key": api_key})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "options, field",
    [
        ({"detector": "yolo"}, "detector"),
        ({"max_faces": "0"}, "max_faces"),
        ({"fps": "1000"}, "fps"),
        ({"min_face_size": "big"}, "min_face_size"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_400_with_the_field_named(client, auth, options, field, assert_contract):
    response = assert_contract(upload(client, b"\xff\xd8\xff", auth, **options))
    assert_problem(response, 400, "invalid_request")
    assert field in response.json["errors"]


def test_json_needs_exactly_one_media_field(client, auth, assert_contract):
    assert_problem(
        assert_contract(client.post("/v1/analyze", json={"detector": "dlib"}, headers=auth)), 400, "invalid_request"
    )
    assert_problem(
        assert_contract(client.post("/v1/analyze", json={"image_base64": "!!!"}, headers=auth)), 400, "invalid_request"
    )


def test_missing_file_part(client, auth, assert_contract):
    response = assert_contract(
        client.post("/v1/analyze", data={"detector": "dlib"}, headers=auth, content_type="multipart/form-data")
    )
    assert_problem(response, 400, "invalid_request")


def test_body_neither_multipart_nor_json(client, auth, assert_contract):
    response = assert_contract(client.post("/v1/analyze", data=b"raw", headers={**auth, "Content-Type": "text/plain"}))
    assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    "data, status, code",
    [
        (b"GIF89a" + b"\x00" * 20, 422, "media_corrupt"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", 415, "unsupported_media_type"),
        (png_bomb(), 413, "media_dimensions_too_large"),
        ((FACES / "img1.jpg").read_bytes()[:5000], 422, "media_corrupt"),
        ((VIDEOS / "single_face.mp4").read_bytes()[:20000], 422, "media_corrupt"),
    ],
)
def test_hostile_and_broken_files(client, auth, data, status, code, assert_contract):
    assert_problem(assert_contract(upload(client, data, auth)), status, code)


def test_upload_over_the_byte_limit_is_413(app, client, auth, assert_contract):
    limit = app.config["MAX_CONTENT_LENGTH"]
    response = assert_contract(upload(client, b"\xff\xd8\xff" + b"\x00" * limit, auth))
    assert_problem(response, 413, "media_too_large")
    size = int(response.request.headers["Content-Length"])
    assert f"the request body is {size} bytes; a request is limited to {limit} bytes" in response.json["detail"]


def test_health_readiness_and_contract(client, assert_contract):
    assert assert_contract(client.get("/healthz")).json == {"status": "ok"}
    assert assert_contract(client.get("/readyz")).json["status"] == "ready"
    response = client.get("/openapi.yaml")
    assert response.status_code == 200 and b"openapi: 3.1.0" in response.data


def test_unknown_route_is_problem_json(client):
    assert_problem(client.get("/v1/nope"), 404, "not_found")


def test_micro_expression_options_are_validated(client, auth, assert_contract):
    bad = assert_contract(upload(client, b"\xff\xd8\xff", auth, micro_expressions='{"sensitivity": 2}'))
    assert_problem(bad, 400, "invalid_request")
    assert "micro_expressions" in bad.json["errors"]
    not_json = assert_contract(upload(client, b"\xff\xd8\xff", auth, micro_expressions="yes"))
    assert_problem(not_json, 400, "invalid_request")


def test_clip_reports_micro_expressions_and_resolution(client, auth, assert_contract):
    response = assert_contract(
        upload(
            client,
            (VIDEOS / "single_face.mp4").read_bytes(),
            auth,
            fps="15",
            micro_expressions='{"enabled": true, "sensitivity": 0.5}',
        )
    )
    body = response.json
    assert body["temporal_resolution_ms"] == pytest.approx(66.7, abs=0.1)
    assert isinstance(body["micro_expressions"], list)


def test_metrics_count_requests_by_route_template(client, auth):
    client.post(
        "/v1/analyze",
        data={"file": (io.BytesIO(reencode(FACES / "img1.jpg", "JPEG", max_side=200)), "x")},
        headers=auth,
    )
    client.get("/v1/jobs/job_does_not_exist", headers=auth)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'emoscope_requests_total{method="POST",route="/v1/analyze",status="200"}' in text
    assert 'route="/v1/jobs/<job_id>"' in text and "job_does_not_exist" not in text
    assert "emoscope_inference_seconds_bucket" in text and "emoscope_faces_per_request_count" in text


def test_logs_are_json_with_the_request_id_and_no_secrets(client, api_key, caplog):
    import json as _json
    import logging

    from api.web.observability import JsonFormatter

    with caplog.at_level(logging.INFO):
        response = client.post(
            "/v1/analyze",
            data={"file": (io.BytesIO(b"\x00garbage"), "x")},
            headers={"Authorization": f"Bearer {api_key}"},
        )
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert all(api_key not in line for line in lines)
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    assert _json.loads(formatter.format(record))["message"] == "hello world"
    assert response.status_code == 415


def test_micro_expressions_as_a_plain_switch(client, auth, assert_contract):
    clip = (VIDEOS / "single_face.mp4").read_bytes()
    for switch in ("true", "false"):
        response = assert_contract(upload(client, clip, auth, fps="5", micro_expressions=switch))
        assert response.status_code == 200, response.get_data(as_text=True)
        spotted = response.json["timing_ms"]["micro_expressions"] > 0  # the spotter ran, or was switched off
        assert spotted == (switch == "true")


def test_an_upload_over_the_byte_limit_names_the_limit_not_a_made_up_size(app_factory, assert_contract):
    from api.wiring.config import Limits
    from tests.conftest import sign_up

    client = app_factory(limits=Limits(max_upload_bytes=2048)).test_client()
    secret = sign_up(client)["api_key"]["secret"]
    response = assert_contract(
        upload(client, b"\xff\xd8\xff" + b"\x00" * 60_000, {"Authorization": f"Bearer {secret}"})
    )
    assert_problem(response, 413, "media_too_large")
    assert response.json["detail"].startswith("'file' is 60003 bytes (0.0572 MiB); an upload is limited to 2048 bytes")
    assert response.json["invalid_params"] == [{"name": "file", "reason": "60003 bytes; at most 2048."}]
    encoded = base64.b64encode(b"\xff\xd8\xff" + b"\x00" * 3000).decode()
    response = assert_contract(
        client.post("/v1/analyze", json={"image_base64": encoded}, headers={"Authorization": f"Bearer {secret}"})
    )
    assert_problem(response, 413, "media_too_large")
    assert response.json["detail"].startswith("'image_base64' is 3003 bytes")
    assert response.json["invalid_params"][0]["name"] == "image_base64"


def test_an_empty_upload_is_named_as_empty_not_an_unknown_type(client, auth, assert_contract):
    response = assert_contract(upload(client, b"", auth))
    assert_problem(response, 400, "media_empty")
    assert response.json["detail"] == "'file' is empty (0 bytes); send a photo or a clip"
    assert response.json["invalid_params"] == [{"name": "file", "reason": "Empty (0 bytes)."}]


def test_a_2mb_form_field_is_a_problem_naming_the_field(client, auth, assert_contract):
    response = assert_contract(upload(client, (FACES / "img1.jpg").read_bytes(), auth, webhook_url="x" * 2_000_000))
    assert_problem(response, 413, "field_too_large")
    assert response.json["detail"].startswith("the form field 'webhook_url' is more than 500000 bytes")
    assert [param["name"] for param in response.json["invalid_params"]] == ["webhook_url"]
    # Named by the part being read when the limit was passed, wherever it stands among the parts.
    first = client.post(
        "/v1/analyze",
        headers=auth,
        data={"micro_expressions": "x" * 700_000, "detector": "skip", "file": (io.BytesIO(b"\xff\xd8\xff"), "a.jpg")},
    )
    assert_problem(first, 413, "field_too_large")
    assert first.json["errors"] == {"micro_expressions": ["More than 500000 bytes."]}
    parts = {f"field{i}": "x" for i in range(1001)}
    many = assert_contract(
        client.post("/v1/analyze", headers=auth, data={**parts, "file": (io.BytesIO(b"\xff\xd8\xff"), "a.jpg")})
    )
    assert_problem(many, 413, "too_many_parts")
    assert many.json["detail"] == "the multipart body has more than 1000 parts"


def test_invalid_fields_are_listed_for_clients_to_name(client, auth, assert_contract):
    response = assert_contract(
        upload(
            client,
            (FACES / "img1.jpg").read_bytes(),
            auth,
            max_faces="0",
            detector="nope",
            micro_expressions='{"sensitivity": 3}',
        )
    )
    assert_problem(response, 400, "invalid_request")
    names = {param["name"] for param in response.json["invalid_params"]}
    assert names == {"max_faces", "detector", "micro_expressions.sensitivity"}
    assert all(param["reason"] for param in response.json["invalid_params"])
    assert response.json["detail"] == "invalid fields: detector, max_faces, micro_expressions.sensitivity"
    schema_rule = assert_contract(
        client.post("/v1/analyze", json={"image_base64": "AAAA", "video_base64": "AAAA"}, headers=auth)
    )
    assert schema_rule.json["invalid_params"] == [
        {"name": "body", "reason": "send exactly one of image_base64 or video_base64"}
    ]


def test_stills_of_the_analysed_frames_only_when_asked(client, auth, assert_contract):
    from PIL import Image

    clip = (VIDEOS / "single_face.mp4").read_bytes()  # 72 frames over 2.4 s
    plain = assert_contract(upload(client, clip, auth, fps="10", micro_expressions="false"))
    assert "stills" not in plain.json
    response = assert_contract(upload(client, clip, auth, fps="30", micro_expressions="false", return_stills="true"))
    assert response.status_code == 200, response.get_data(as_text=True)
    stills, frames = response.json["stills"], response.json["frames"]
    # One per 40 ms (2.4 s / 60) at most, so at 30 fps every analysed frame but the ones within 40 ms of the last.
    assert 30 <= len(stills) <= 60 and stills[0]["timestamp_ms"] == frames[0]["timestamp_ms"] == 0
    analysed = {(frame["index"], frame["timestamp_ms"]) for frame in frames}
    assert all((still["frame_index"], still["timestamp_ms"]) in analysed for still in stills)
    assert [still["timestamp_ms"] for still in stills] == sorted(still["timestamp_ms"] for still in stills)
    picture = Image.open(io.BytesIO(base64.b64decode(stills[-1]["jpeg_base64"])))
    assert picture.format == "JPEG" and picture.size == (320, 180)


def test_a_refused_upload_names_its_field(client, auth, assert_contract):
    bomb = assert_contract(upload(client, png_bomb(), auth))
    assert_problem(bomb, 413, "media_dimensions_too_large")
    assert bomb.json["detail"].startswith("'file': ") and "pixels" in bomb.json["detail"]
    assert [param["name"] for param in bomb.json["invalid_params"]] == ["file"]
    corrupt = assert_contract(
        client.post(
            "/v1/analyze",
            headers=auth,
            json={"video_base64": base64.b64encode((VIDEOS / "single_face.mp4").read_bytes()[:20000]).decode()},
        )
    )
    assert_problem(corrupt, 422, "media_corrupt")
    assert corrupt.json["invalid_params"][0]["name"] == "video_base64"
