async def test_health_is_the_originals_body(client):
    response = await client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK" and body["service"] == "Product Service"


async def test_ready_checks_the_database(client):
    assert (await client.get("/ready")).json()["status"] == "ready"
