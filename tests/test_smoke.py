from http import HTTPStatus

from tests.factories import funded_balance


def test_deposit_through_the_api_credits_the_balance_and_writes_one_entry(api, user):
    balance = funded_balance(amount="10.00", wallet=None)
    balance.wallet.owner = user
    balance.wallet.save()

    response = api.post("/api/v1/transactions/deposit/", {"wallet_balance_id": str(balance.pk), "amount": "5.50"})

    assert response.status_code == HTTPStatus.CREATED, response.json()
    assert response.json()["balance_after"] == "15.50"
    balance.refresh_from_db()
    assert balance.amount == 15.5
    assert balance.entries.count() == 2
