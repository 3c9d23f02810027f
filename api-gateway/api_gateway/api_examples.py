"""The examples of the gateway's OpenAPI document (openapi_merge.py): the requests of the seed
README's "Example API Usage" (John Doe buys an iPhone 15 Pro), with real ids where the
README has placeholders, and the answers this system gives them (recorded from a running
stack). Kept here, in code: nothing is read from outside the project at run time."""

from typing import Any

USER_ID = "59da573d-8bd9-4115-9e20-e593953cce41"
PRODUCT_ID = "f3675b8b-6256-4c9c-9839-003ec751c3ec"
CART_ID = "0bd5d303-30ed-472f-95b1-f63aee8d0cff"
ORDER_ID = "b90d2122-0f9c-4d8a-b025-735cc0f000ed"
PAYMENT_ID = "41728e00-d9e2-4d96-9d5a-94d3eee545ef"
STRIPE_ORDER_ID = "6d0e2a4c-3f51-4a8e-9c7b-2e5f0b1d8a93"
# An example's token (signed with a throwaway secret; it opens nothing).
SAMPLE_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpZCI6IjU5ZGE1NzNkLThiZDktNDExNS05ZTIwLWU1OTM5"
    "NTNjY2U0MSIsImVtYWlsIjoiam9obkBleGFtcGxlLmNvbSIsInJvbGUiOiJjdXN0b21lciIsImlhdCI6MTc5"
    "NTY0NTMyNSwiZXhwIjoxNzk2MjUwMTI1fQ.RpI5lechn4mNPRRIDXCA8SrGcDnRDhHHHRuoOsXPZRc"
)
CREATED_AT = "2026-11-25T22:22:05.253768Z"

USER = {
    "id": USER_ID,
    "name": "John Doe",
    "email": "john@example.com",
    "role": "customer",
    "phoneNumber": "254712345678",
    "isActive": True,
    "createdAt": CREATED_AT,
    "updatedAt": CREATED_AT,
}
PRODUCT = {
    "id": PRODUCT_ID,
    "name": "iPhone 15 Pro",
    "description": "Latest iPhone",
    "price": "150000.00",
    "stock": 50,
    "category": "Electronics",
    "imageUrl": None,
    "images": [],
    "sku": "IP15PRO-001",
    "weight": None,
    "dimensions": None,
    "isActive": True,
    "createdAt": "2026-11-25T22:22:05.990008Z",
    "updatedAt": "2026-11-25T22:22:05.990008Z",
}
CART = {
    "id": CART_ID,
    "userId": USER_ID,
    "totalAmount": "150000.00",
    "itemCount": 1,
    "expiresAt": "2026-12-25T22:22:06.160980Z",
    "items": [
        {
            "id": "f58857cd-9c0e-474e-a683-2920315c7fc5",
            "cartId": CART_ID,
            "productId": PRODUCT_ID,
            "productName": "iPhone 15 Pro",
            "price": "150000.00",
            "quantity": 1,
            "subtotal": "150000.00",
            "imageUrl": None,
            "priceChanged": False,
            "previousPrice": None,
            "unavailable": False,
            "createdAt": "2026-11-25T22:22:06.157123Z",
            "updatedAt": "2026-11-25T22:22:06.157123Z",
        }
    ],
    "pricesRefreshed": True,
    "createdAt": "2026-11-25T22:22:06.112377Z",
    "updatedAt": "2026-11-25T22:22:06.157123Z",
}
SHIPPING_ADDRESS = {
    "street": "123 Main St",
    "city": "Nairobi",
    "country": "Kenya",
    "postalCode": "00100",
}
ORDER = {
    "id": ORDER_ID,
    "userId": USER_ID,
    "orderNumber": "ORD-1795645326247-000GJDGXZ",
    "status": "pending",
    "totalAmount": "150000.00",
    "currency": "KES",
    "shippingAddress": SHIPPING_ADDRESS,
    "paymentMethod": None,
    "paymentStatus": "pending",
    "paymentIds": [],
    "notes": None,
    "paidAt": None,
    "shippedAt": None,
    "deliveredAt": None,
    "cancelledAt": None,
    "createdAt": "2026-11-25T22:22:06.249892Z",
    "updatedAt": "2026-11-25T22:22:06.337661Z",
    "items": [
        {
            "id": "07dbdb72-a117-4492-88b7-bb0059c9eab2",
            "orderId": ORDER_ID,
            "productId": PRODUCT_ID,
            "productName": "iPhone 15 Pro",
            "quantity": 1,
            "price": "150000.00",
            "subtotal": "150000.00",
            "createdAt": "2026-11-25T22:22:06.337661Z",
            "updatedAt": "2026-11-25T22:22:06.337661Z",
        }
    ],
    "history": [
        {
            "from": None,
            "to": "pending",
            "at": "2026-11-25T22:22:06.356468Z",
            "reason": "Order placed",
            "paymentStatus": "pending",
            "actor": "customer",
        }
    ],
}
CHECKOUT_REQUEST_ID = "ws_CO_26112026012206903091279517"
MPESA_PAYMENT = {
    "id": PAYMENT_ID,
    "orderId": ORDER_ID,
    "userId": USER_ID,
    "provider": "mpesa",
    "amount": "150000.00",
    "currency": "KES",
    "status": "processing",
    "transactionId": None,
    "externalReference": CHECKOUT_REQUEST_ID,
    "phoneNumber": "254712345678",
    "metadata": {
        "accountReference": "247000GJDGXZ",
        "merchantRequestId": "02fb-42cd-2cdf5019475c4b76",
        "checkoutRequestId": CHECKOUT_REQUEST_ID,
    },
    "errorMessage": None,
    "refundedAmount": "0.00",
    "completedAt": None,
    "createdAt": "2026-11-25T22:22:06.517582Z",
    "updatedAt": "2026-11-25T22:22:06.580712Z",
}
INTENT_ID = "pi_3QfT2bLkdIwHu7ix0ZgC1a2B"
STRIPE_PAYMENT = {
    **MPESA_PAYMENT,
    "id": "c3a1f0d2-8b47-4e6a-9f15-7d2e4b6a0c88",
    "orderId": STRIPE_ORDER_ID,
    "provider": "stripe",
    "amount": "1500.00",
    "externalReference": INTENT_ID,
    "phoneNumber": None,
    "metadata": {"paymentIntentId": INTENT_ID},
}

# (method, gateway path) -> summary, notes, request body, responses by status code.
EXAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/auth/register"): {
        "summary": "Register new user",
        "request": {
            "name": "John Doe",
            "email": "john@example.com",
            "password": "password123",
            "phoneNumber": "254712345678",
        },
        "responses": {
            "201": {"message": "User registered successfully", "token": SAMPLE_JWT, "user": USER},
            "400": {"error": "User already exists"},
        },
    },
    ("POST", "/api/auth/login"): {
        "summary": "Login user",
        "request": {"email": "john@example.com", "password": "password123"},
        "responses": {
            "200": {"message": "Login successful", "token": SAMPLE_JWT, "user": USER},
            "401": {"error": "Invalid credentials"},
        },
    },
    ("POST", "/api/products"): {
        "summary": "Create product",
        "notes": "The price may be sent as a number or a string; it is answered as a string "
        "with two decimals.",
        "request": {
            "name": "iPhone 15 Pro",
            "description": "Latest iPhone",
            "price": 150000,
            "stock": 50,
            "category": "Electronics",
            "sku": "IP15PRO-001",
        },
        "responses": {
            "201": {"message": "Product created successfully", "product": PRODUCT},
            "400": {"error": "Resource already exists"},
        },
    },
    ("POST", "/api/cart/items"): {
        "summary": "Add item to cart",
        "notes": "The name and price come from the catalogue, never from the client.",
        "request": {"productId": PRODUCT_ID, "quantity": 1},
        "responses": {
            "200": {"message": "Item added to cart", "cart": CART},
            "404": {"error": "Product not found"},
        },
    },
    ("GET", "/api/cart"): {
        "summary": "Get user cart",
        "responses": {"200": {"cart": CART}},
    },
    ("POST", "/api/orders"): {
        "summary": "Create order",
        "notes": "Names and prices come from the catalogue (a `productName` sent is "
        "ignored). Without `items`, the caller's cart is ordered. An `Idempotency-Key` "
        "header makes a retry answer the first order instead of placing another.",
        "request": {
            "items": [{"productId": PRODUCT_ID, "productName": "iPhone 15 Pro", "quantity": 1}],
            "shippingAddress": SHIPPING_ADDRESS,
        },
        "responses": {
            "201": {"message": "Order created successfully", "order": ORDER},
            "400": {
                "error": "Some items are out of stock",
                "details": [{"productId": PRODUCT_ID, "requested": 1, "available": 0}],
            },
        },
    },
    ("POST", "/api/payments/mpesa"): {
        "summary": "Initiate M-Pesa payment",
        "notes": "An STK Push for the order's total to the phone (07..., 2547..., +2547...). "
        "`amount` may be left out; when sent it must be the order's total. The payment "
        "completes when M-Pesa confirms it: poll GET /api/payments/{payment_id}.",
        "request": {"orderId": ORDER_ID, "phoneNumber": "254712345678", "amount": 150000},
        "responses": {
            "200": {
                "message": "M-Pesa payment initiated. Please check your phone.",
                "payment": MPESA_PAYMENT,
                "checkoutRequestId": CHECKOUT_REQUEST_ID,
            },
            "400": {"error": "Order is already paid"},
        },
    },
    ("POST", "/api/payments/stripe"): {
        "summary": "Initiate Stripe payment",
        "notes": "A PaymentIntent for the order's total; confirm it in the client with "
        "`clientSecret`. `amount` and `currency` may be left out; when sent they must be the "
        "order's total and the store's currency (STORE_CURRENCY, KES by default: the "
        "README's `USD` works in a USD store only).",
        "request": {"orderId": STRIPE_ORDER_ID, "amount": 1500, "currency": "KES"},
        "responses": {
            "200": {
                "message": "Stripe payment initiated",
                "payment": STRIPE_PAYMENT,
                "clientSecret": f"{INTENT_ID}_secret_Xy7Qk2LmN4pR8sT1",
            },
            "400": {"error": "Currency must be KES", "details": {"expected": "KES"}},
        },
    },
    ("POST", "/api/payments/webhook/mpesa/{secret}"): {
        "summary": "M-Pesa STK callback (Daraja)",
        "notes": "Called by Daraja, not by clients: MPESA_CALLBACK_URL plus the "
        "MPESA_CALLBACK_SECRET as the last segment. A success is believed only once STK "
        "Query confirms it, for the payment's amount. Always answers Daraja's "
        "acknowledgement; 403 without the secret.",
        "request": {
            "Body": {
                "stkCallback": {
                    "MerchantRequestID": "02fb-42cd-2cdf5019475c4b76",
                    "CheckoutRequestID": CHECKOUT_REQUEST_ID,
                    "ResultCode": 0,
                    "ResultDesc": "The service request is processed successfully.",
                    "CallbackMetadata": {
                        "Item": [
                            {"Name": "Amount", "Value": 150000},
                            {"Name": "MpesaReceiptNumber", "Value": "SFMRBT3T0R"},
                            {"Name": "TransactionDate", "Value": 20261126012207},
                            {"Name": "PhoneNumber", "Value": 254712345678},
                        ]
                    },
                }
            }
        },
        "responses": {"200": {"ResultCode": 0, "ResultDesc": "Accepted"}},
    },
    ("POST", "/api/payments/webhook/stripe"): {
        "summary": "Stripe webhook",
        "notes": "Called by Stripe, not by clients: the event as Stripe sends it, verified "
        "by its `Stripe-Signature` header over the raw body (STRIPE_WEBHOOK_SECRET). Each "
        "event is processed once. Try it with `stripe listen --forward-to "
        "localhost:5000/api/payments/webhook/stripe`.",
        "responses": {"200": {"received": True}, "400": {"error": "Invalid signature"}},
    },
}
