<?php
// The people of deskgate's test IdP; each password is "Passw0rd-<local part>".
$config = [
    'admin' => ['core:AdminPassword'],

    'example-userpass' => [
        'exampleauth:UserPass',
        'alice@corp.example.com:Passw0rd-alice' => [
            'email' => ['alice@corp.example.com'],
            'displayName' => ['Alice Liddell'],
            'memberOf' => ['helpdesk-agents', 'vips'],
        ],
        'bob@corp.example.com:Passw0rd-bob' => [
            'email' => ['bob@corp.example.com'],
            'displayName' => ['Bob Tables'],
            'memberOf' => ['power-users'],
        ],
        // Someone whose address starts like alice's: the target of the XML-comment NameID
        // trick (alice@corp.example.com<!---->.evil.example).
        'mallory@evil.example:Passw0rd-mallory' => [
            'email' => ['alice@corp.example.com.evil.example'],
            'displayName' => ['Mallory'],
            'memberOf' => [],
        ],
    ],
];
