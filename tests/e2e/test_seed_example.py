"""The seed page's own Python example, run against batgate unchanged but for the URL.

The functions below are pasted from the seed's "Python" section. The only edits:
the base URL is a parameter (it was hard-coded to restapi.smsbat.com), and so is the
poll interval (it was `time.sleep(5)`), so the test does not wait five seconds for a
sandbox that delivers in a fraction of one.
"""

from __future__ import annotations

import time

import pytest
import requests

SMSBAT = "https://restapi.smsbat.com"


def check_status(message_id, api_key, base_url=SMSBAT):
    url = f"{base_url}/bat/message/{message_id}"
    headers = {"X-Authorization-Key": api_key}

    response = requests.get(url, headers=headers)
    return response.json()


def wait_for_delivery(message_id, api_key, timeout=60, base_url=SMSBAT, poll_interval=5):
    """Poll until delivered or timeout"""
    start_time = time.time()

    while time.time() - start_time < timeout:
        status = check_status(message_id, api_key, base_url)

        if status["deliverystatus"] == "delivered":
            return {"success": True, "status": status}

        if status["deliverystatus"] in ["undeliverable", "permanenterror"]:
            return {"success": False, "status": status}

        time.sleep(poll_interval)

    return {"success": False, "timeout": True}


def send_sms(base_url, api_key, to):
    response = requests.post(
        f"{base_url}/bat/messagelist",
        json={
            "messages": [{"from": "batgate", "to": to, "type": "sms", "text": "Order confirmed"}]
        },
        headers={"X-Authorization-Key": api_key},
    )
    response.raise_for_status()
    return response.json()["messages"][0]["messageId"]


@pytest.mark.e2e
def test_seed_example_reports_delivery_with_cost(fast_server, alice, capsys):
    message_id = send_sms(fast_server.base_url, alice.api_key, "+380501234567")

    # Usage, as in the seed:
    result = wait_for_delivery(
        message_id, alice.api_key, timeout=30, base_url=fast_server.base_url, poll_interval=0.1
    )

    if result["success"]:
        print(f"Message delivered! Cost: {result['status']['cost']}")
    else:
        print("Message delivery failed or timeout")

    assert result["success"] is True
    assert result["status"]["messageId"] == message_id
    assert result["status"]["deliverystatus"] == "delivered"
    assert result["status"]["cost"] == pytest.approx(0.05)
    assert capsys.readouterr().out == "Message delivered! Cost: 0.05\n"


@pytest.mark.e2e
def test_seed_example_reports_failure(fast_server, alice):
    message_id = send_sms(fast_server.base_url, alice.api_key, "+380501230001")

    result = wait_for_delivery(
        message_id, alice.api_key, timeout=30, base_url=fast_server.base_url, poll_interval=0.1
    )

    assert result["success"] is False
    assert result["status"]["deliverystatus"] == "undeliverable"
    assert result["status"]["cost"] == 0
